"""The systems HireSync delivers to, as real servers: the group HR system and the HR cloud.

    GroupHRSimulator   POST /oauth/token (client credentials)
                       POST /api/v1/assessment-results/batch   {items: [{idempotencyKey, record}]}
                       DELETE /api/v1/candidates/{candidateKey}
                       POST /api/v1/workflow/events        {eventType, externalKey, data} (Idempotency-Key)
                       GET  /api/v1/workflow/status-changes?since=ISO&cursor=N&limit=N
    HRCloudSimulator   X-Api-Key header
                       PUT /open-api/v1/assessments/{externalKey}
                       DELETE /open-api/v1/candidates/{candidateKey}

Idempotency-Key semantics (as Stripe and the IETF draft describe them): the same key with the
same body replays the stored (2xx) response without applying anything again (a refusal applied
nothing, so its key is free for a retry once the data is fixed); the same key with a
different body is 422; a key whose first request is still being processed is 409. The batch
endpoint applies the same rules per item key, so a batch cut differently on a retry is safe too.
A write "applies" a record: `records` holds the latest per external key, `applied` counts how
often each was written and `received` lists (externalKey, version) in the order applied.

Fault knobs beyond SimServer's `outage`: `throttle` (the next N requests get 429 with
Retry-After `retry_after_seconds`), `lose_responses` (the next N writes are applied, then answered
504 as if a gateway lost the response), `refuse` (external keys answered 400 with a message that
quotes the candidate's ID number, as careless systems do), `hold` (a threading.Event the write
waits on while its key is in progress; `holding` is set once it waits).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
from collections import Counter

from simulators.server import Request, Response, SimServer, error_response, json_response

STATUSES = {"grouphr": ("PASSED", "FAILED", "PENDING", "INCOMPLETE"), "hrcloud": ("pass", "fail", "pending", "incomplete")}


class _IdempotentTarget(SimServer):
    kind = ""

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self.records: dict[str, dict] = {}
        self.applied: Counter[str] = Counter()
        self.received: list[tuple[str, int | None]] = []
        self.keys_seen: list[str | None] = []  # Idempotency-Key of every write request, None if absent
        self.throttle = 0
        self.retry_after_seconds = 0
        self.lose_responses = 0
        self.refuse: set[str] = set()
        # What a refusal says; {nid}, {mobile} (local form, no +86) and {email} quote the record, as
        # real targets do ("手机号156…与身份证…已注册").
        self.refuse_message = "candidate {nid} is on the do-not-hire list"
        self.hold: threading.Event | None = None
        self.holding = threading.Event()
        self.erased: list[str] = []
        self._idem: dict[str, tuple[str, Response | None]] = {}  # key -> (body fingerprint, response or in progress)
        self._lock = threading.Lock()
        self._next_id = 0

    # -- idempotency ---------------------------------------------------------------------------
    def _begin(self, key: str, fingerprint: str) -> Response | None:
        """None: go ahead (the key is now in progress); else the response to send instead."""
        with self._lock:
            seen = self._idem.get(key)
            if seen is None:
                self._idem[key] = (fingerprint, None)
                return None
            if seen[0] != fingerprint:
                return error_response(422, "idempotency_key_reused", "this Idempotency-Key was used with a different request")
            if seen[1] is None:
                return error_response(409, "request_in_progress", "a request with this Idempotency-Key is in progress")
            return seen[1]

    def _finish(self, key: str, fingerprint: str, response: Response) -> None:
        with self._lock:
            if response.status not in (200, 201, 204):
                # Refused, failed or partly refused (207): what was refused applied nothing, so the
                # key is free again; the items that did apply are guarded by their own keys.
                self._idem.pop(key, None)
            else:
                self._idem[key] = (fingerprint, response)

    def _apply(self, record: dict) -> tuple[int, dict]:
        """Validate and store one record: (status, body)."""
        key = record.get("externalKey")
        if not isinstance(key, str) or not key:
            return 400, {"error": {"code": "missing_external_key", "message": "externalKey is required"}}
        if key in self.refuse:
            cand = record.get("candidate", {}) if self.kind == "grouphr" else record
            nid = cand.get("idNumber") if self.kind == "grouphr" else record.get("id_number")
            mobile = str(cand.get("mobile") or cand.get("phone") or "").removeprefix("+86")
            message = self.refuse_message.format(nid=nid, mobile=mobile, email=cand.get("email"))
            return 400, {"error": {"code": "candidate_rejected", "message": message}}
        status = record.get("assessment", {}).get("status") if self.kind == "grouphr" else record.get("assessment_status")
        if status not in STATUSES[self.kind]:
            return 422, {"error": {"code": "invalid_status", "message": f"unknown assessment status {status!r}"}}
        with self._lock:
            old = self.records.get(key)
            if old is None:
                self._next_id += 1
                ref = f"{self.kind.upper()}-{self._next_id:06d}"
            else:
                ref = old["_id"]
            self.records[key] = {**record, "_id": ref}
            self.applied[key] += 1
            self.received.append((key, record.get("version", record.get("revision"))))
        return (201 if old is None else 200), {"id": ref}

    def _write(self, request: Request, handler) -> Response:
        """Run a write under its Idempotency-Key (if any), with the fault knobs."""
        key = request.headers.get("Idempotency-Key")
        with self._lock:
            self.keys_seen.append(key)
            if self.throttle > 0:
                self.throttle -= 1
                return error_response(429, "rate_limited", headers={"Retry-After": str(self.retry_after_seconds)})
        fingerprint = hashlib.sha256(request.method.encode() + request.path.encode() + request.body).hexdigest()
        if key:
            early = self._begin(key, fingerprint)
            if early is not None:
                return early
        if self.hold is not None:
            self.holding.set()
            self.hold.wait(5)
        response = handler()
        if key:
            self._finish(key, fingerprint, response)
        with self._lock:
            lose = self.lose_responses > 0 and response.status < 500
            if lose:
                self.lose_responses -= 1
        return error_response(504, "gateway_timeout") if lose else response

    def _erase(self, candidate_key: str) -> Response:
        with self._lock:
            gone = [k for k, r in self.records.items() if r.get("candidateKey", r.get("candidate_ref")) == candidate_key]
            for k in gone:
                del self.records[k]
            self.erased.append(candidate_key)
        return json_response(200, {"deleted": len(gone)})


class GroupHRSimulator(_IdempotentTarget):
    """Also the hiring workflow: `events` holds every workflow event applied (a replay under its
    Idempotency-Key applies nothing); `advance(result key, stage)` is a person moving a candidate
    on (REINTERVIEWED, OFFER, HIRED, REJECTED), published on the status-change feed."""

    kind = "grouphr"
    EVENT_TYPES = ("REINTERVIEW_REQUEST",)
    FEED_STAGES = ("REINTERVIEWED", "OFFER", "HIRED", "REJECTED")

    def __init__(self, client_id: str = "hiresync", client_secret: str = "grouphr-secret", port: int = 0) -> None:
        super().__init__(port)
        self.client_id, self.client_secret = client_id, client_secret
        self.tokens: set[str] = set()
        self.events: list[dict] = []
        self.status_changes: list[dict] = []

    def advance(self, external_key: str, stage: str, occurred_at: str | None = None) -> dict:
        from datetime import datetime, timezone

        if stage not in self.FEED_STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        with self._lock:
            change = {"id": f"SC-{len(self.status_changes) + 1:06d}", "externalKey": external_key, "stage": stage,
                      "occurredAt": occurred_at or datetime.now(timezone.utc).isoformat(),
                      "note": "面试官备注"}  # free text: the client must not copy it blindly
            self.status_changes.append(change)
        return change

    def handle(self, request: Request) -> Response:
        if request.method == "POST" and request.path == "/oauth/token":
            form = request.form()
            if (form.get("client_id"), form.get("client_secret")) != (self.client_id, self.client_secret):
                return error_response(401, "invalid_client")
            token = secrets.token_hex(16)
            self.tokens.add(token)
            return json_response(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.tokens:
            return error_response(401, "invalid_token")
        if request.method == "POST" and request.path == "/api/v1/assessment-results/batch":
            if not request.headers.get("Idempotency-Key"):
                return error_response(400, "idempotency_key_required", "POST needs an Idempotency-Key header")
            return self._write(request, lambda: self._batch(request))
        if request.method == "DELETE" and (m := re.fullmatch(r"/api/v1/candidates/([^/]+)", request.path)):
            return self._write(request, lambda: self._erase(m.group(1)))
        if request.method == "POST" and request.path == "/api/v1/workflow/events":
            if not request.headers.get("Idempotency-Key"):
                return error_response(400, "idempotency_key_required", "POST needs an Idempotency-Key header")
            return self._write(request, lambda: self._event(request))
        if request.method == "GET" and request.path == "/api/v1/workflow/status-changes":
            return self._feed(request)
        return error_response(404, "not_found")

    def _event(self, request: Request) -> Response:
        try:
            event = request.json()
        except ValueError:
            return error_response(400, "bad_request", "body must be JSON")
        if not isinstance(event, dict) or event.get("eventType") not in self.EVENT_TYPES:
            return error_response(422, "invalid_event_type", f"unknown eventType {event.get('eventType')!r}"
                                  if isinstance(event, dict) else "body must be an object")
        if not isinstance(event.get("externalKey"), str) or not event["externalKey"]:
            return error_response(400, "missing_external_key", "externalKey is required")
        with self._lock:
            self.events.append(event)
            ref = f"EVT-{len(self.events):06d}"
        return json_response(201, {"id": ref})

    def _feed(self, request: Request) -> Response:
        """Changes at or after `since` (ISO time), oldest first, `limit` per page, `cursor` = offset."""
        from datetime import datetime

        since = request.arg("since")
        try:
            start = datetime.fromisoformat(since) if since else None
            offset, limit = int(request.arg("cursor", "0")), min(int(request.arg("limit", "100")), 1000)
        except ValueError:
            return error_response(400, "bad_request", "since must be an ISO time, cursor and limit integers")
        with self._lock:
            items = sorted((c for c in self.status_changes
                            if start is None or datetime.fromisoformat(c["occurredAt"]) >= start),
                           key=lambda c: (c["occurredAt"], c["id"]))
        page = items[offset:offset + limit]
        more = offset + limit < len(items)
        return json_response(200, {"items": page, "nextCursor": str(offset + limit) if more else None})

    def _batch(self, request: Request) -> Response:
        try:
            items = request.json()["items"]
        except (ValueError, KeyError, TypeError):
            return error_response(400, "bad_request", "body must be {items: [...]}")
        results = []
        for item in items:
            key, record = item.get("idempotencyKey"), item.get("record") or {}
            fp = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
            early = self._begin(f"item:{key}", fp) if key else None
            if early is not None:  # replayed (or refused) per item, exactly as the first time
                results.append(_item_result(early))
                continue
            status, body = self._apply(record)
            result = {"idempotencyKey": key, "status": status, **body}
            if key:
                self._finish(f"item:{key}", fp, json_response(status, result))
            results.append(result)
        return json_response(200 if all(r["status"] < 300 for r in results) else 207, {"results": results})


def _item_result(response: Response) -> dict:
    body = json.loads(response.body)
    return body if "status" in body else {"status": response.status, **body}


class HRCloudSimulator(_IdempotentTarget):
    kind = "hrcloud"

    def __init__(self, api_key: str = "hrcloud-key", port: int = 0) -> None:
        super().__init__(port)
        self.api_key = api_key
        self.client_id, self.client_secret = "", api_key  # for tests.helpers.connect: password = the key

    def handle(self, request: Request) -> Response:
        if request.headers.get("X-Api-Key") != self.api_key:
            return error_response(401, "invalid_api_key")
        if request.method == "PUT" and (m := re.fullmatch(r"/open-api/v1/assessments/([^/]+)", request.path)):
            return self._write(request, lambda: self._put(request, m.group(1)))
        if request.method == "DELETE" and (m := re.fullmatch(r"/open-api/v1/candidates/([^/]+)", request.path)):
            return self._write(request, lambda: self._erase(m.group(1)))
        return error_response(404, "not_found")

    def _put(self, request: Request, external_key: str) -> Response:
        from urllib.parse import unquote

        try:
            record = request.json()
        except ValueError:
            return error_response(400, "bad_request", "body must be JSON")
        if record.get("externalKey") != unquote(external_key):
            return error_response(400, "key_mismatch", "externalKey in the body differs from the path")
        status, body = self._apply(record)
        return json_response(status, body if status >= 300 else {"code": 0, "data": body})

"""A REST target: the group HR system (OAuth2, batch endpoint) or the HR cloud (API key, PUT by
external key), as its profile says.

No transport-level retries: the relay retries, later, with the same idempotency keys, so a POST
is never sent twice without one (urllib3 would not retry a POST anyway). Every status is turned
into an Outcome per record; 401/403 stop the target's delivery (TargetError).
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote

import requests

from connectors.connection import ConnectionSettings
from connectors.errors import SourceAuthError, SourceError
from connectors.rest.auth import auth_for
from connectors.targets.base import Outcome, TargetError
from connectors.targets.profile import TargetProfile
from connectors.targets.shape import Shape, dig
from hiresync.privacy.redact import install_log_redaction

PERMANENT = (400, 404, 410, 413, 422)  # the same request will be refused again: dead letter
install_log_redaction()  # an API key in a query must not reach urllib3's request logs


class RestTarget:
    def __init__(self, profile: TargetProfile, conn: ConnectionSettings, shape: Shape,
                 session: requests.Session | None = None):
        base = (conn.host or "").rstrip("/")
        if not base:
            raise TargetError(profile.name, f"connection {conn.conn_id!r} has no host (the target's base URL)")
        self.name, self.profile, self.shape, self.base = profile.name, profile, shape, base
        self.session = session or requests.Session()
        self.timeout = (profile.connect_timeout, profile.read_timeout)
        self.auth = auth_for(profile.name, profile.auth, conn, base, self.session, self.timeout)
        up = profile.upsert
        self.batch_size = up.get("batch_size", 100) if up["mode"] == "batch" else 1
        self.idem_header = up.get("idempotency_header")

    # -- the relay's interface ----------------------------------------------------------------
    def send(self, items: list[tuple[str, str, dict]]) -> list[Outcome]:
        """(kind, idempotency key, payload) in outbox order -> one Outcome each. After a record
        that must wait, the later ones wait too (nothing overtakes within a candidate)."""
        outcomes: list[Outcome] = []
        i = 0
        while i < len(items):
            kind = items[i][0]
            if kind == "erase":
                group = [items[i]]
                got = [self._erase(items[i][1], items[i][2])]
            else:
                j = i
                while j < len(items) and items[j][0] == "upsert" and j - i < self.batch_size:
                    j += 1
                group = items[i:j]
                got = self._upsert_batch(group) if self.profile.upsert["mode"] == "batch" else [self._put(*group[0][1:])]
            outcomes += got
            i += len(group)
            if any(o.state == "retry" for o in got):
                waiting = next(o for o in got if o.state == "retry")
                outcomes += [Outcome("retry", waiting.http_status, None, waiting.reason, waiting.retry_after)] * (len(items) - i)
                break
        return outcomes

    # -- requests ------------------------------------------------------------------------------
    def _upsert_batch(self, group: list[tuple[str, str, dict]]) -> list[Outcome]:
        up = self.profile.upsert
        key_field, record_field = up.get("key_field", "idempotencyKey"), up.get("record_field", "record")
        body = {up.get("items_field", "items"): [{key_field: key, record_field: self.shape.render(p)}
                                                 for _, key, p in group]}
        # Deterministic: the same rows make the same key, so a lost response is replayed, not re-applied.
        batch_key = hashlib.sha256("|".join(key for _, key, _ in group).encode()).hexdigest()
        resp = self._request(up["method"], up["path"], batch_key, body)
        if isinstance(resp, Outcome) or not 200 <= resp.status_code < 300:
            whole = resp if isinstance(resp, Outcome) else self._outcome(resp)
            return [whole] * len(group)
        results = dig(_json(resp), up.get("results_field", "results"))
        if not isinstance(results, list) or len(results) != len(group):
            return [Outcome("retry", resp.status_code, reason="the batch response has no per-record results")] * len(group)
        out = []
        for item in results:
            status = int(item.get("status", resp.status_code)) if isinstance(item, dict) else resp.status_code
            out.append(self._classify(status, item if isinstance(item, dict) else {}, None))
        return out

    def _put(self, key: str, payload: dict) -> Outcome:
        up = self.profile.upsert
        record = self.shape.render(payload)
        try:
            path = _fill(up["path"], record)
        except ValueError as exc:
            return Outcome("dead", None, reason=str(exc))
        resp = self._request(up["method"], path, key, record)
        return resp if isinstance(resp, Outcome) else self._outcome(resp)

    def _erase(self, key: str, request: dict) -> Outcome:
        spec = self.profile.erase
        if spec is None:
            return Outcome("dead", None, reason=f"target {self.name!r} has no erase endpoint in its profile")
        resp = self._request(spec["method"], _fill(spec["path"], request), key,
                             request if spec["method"] == "POST" else None)
        if isinstance(resp, Outcome):
            return resp
        if resp.status_code == 404:  # already gone: erasing twice is fine
            return Outcome("sent", 404, ref=request["candidate_key"])
        out = self._outcome(resp)
        return out._replace(ref=request["candidate_key"]) if out.state == "sent" else out

    def _request(self, method: str, path: str, key: str, body) -> requests.Response | Outcome:
        headers = {self.idem_header: key} if self.idem_header else {}
        for attempt in (1, 2):
            try:
                resp = self.session.request(method, self.base + path, json=body, headers=headers,
                                            auth=self.auth, timeout=self.timeout)
            except SourceAuthError as exc:
                raise TargetError(self.name, exc.cause) from None
            except SourceError as exc:  # the token endpoint is down: like the target being down
                return Outcome("retry", None, reason=exc.cause)
            except requests.RequestException as exc:
                return Outcome("retry", None, reason=f"no answer ({type(exc).__name__})")
            if resp.status_code == 401 and attempt == 1 and hasattr(self.auth, "invalidate"):
                self.auth.invalidate()  # a token revoked early: one fresh token, then give up
                continue
            if resp.status_code in (401, 403):
                raise TargetError(self.name, f"credentials refused (HTTP {resp.status_code}); "
                                             f"check connection {self.profile.connection!r}")
            return resp
        raise AssertionError("unreachable")

    def _outcome(self, resp: requests.Response) -> Outcome:
        return self._classify(resp.status_code, _json(resp), resp.headers.get("Retry-After"))

    def _classify(self, status: int, body: dict, retry_after: str | None) -> Outcome:
        if 200 <= status < 300:
            ref = dig(body, self.profile.upsert.get("ref_path", "id")) if body else None
            return Outcome("sent", status, ref=None if ref is None or not isinstance(ref, (str, int)) else str(ref))
        reason = _reason(body) or f"HTTP {status}"
        if status in PERMANENT:
            return Outcome("dead", status, reason=reason)
        return Outcome("retry", status, reason=reason, retry_after=_seconds(retry_after))


def _fill(template: str, doc: dict) -> str:
    """`/assessments/{externalKey}` with the record's value, URL-quoted."""
    import re

    def value(m):
        v = dig(doc, m.group(1))
        if v is None or not isinstance(v, (str, int)):
            raise ValueError(f"the record has no {m.group(1)!r} for the request path")
        return quote(str(v), safe="")

    return re.sub(r"\{([A-Za-z0-9_.]+)\}", value, template)


def _json(resp: requests.Response) -> dict:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _reason(body: dict) -> str | None:
    """The target's error code and message (masked and trimmed by the relay before it is stored)."""
    err = body.get("error")
    if isinstance(err, dict):
        code, message = err.get("code"), err.get("message")
    else:
        code, message = err, body.get("message")
    text = ": ".join(str(p) for p in (code, message) if p)
    return text or None


def _seconds(value: str | None) -> float | None:
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the backoff decides

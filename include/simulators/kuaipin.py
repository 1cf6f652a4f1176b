"""KuaiPin (快聘): a simulated push-only AI-interview vendor: signed webhooks plus a replay endpoint.

The vendor calls us. Each event is POSTed to the receiver URL the customer registered:

    POST <receiver URL>          body: {"id", "type", "created_at", "data": {...interview result...}}
    X-KuaiPin-Delivery:  the delivery id (the event id; a re-send carries the same id)
    X-KuaiPin-Timestamp: Unix seconds at signing time (receivers reject anything older than 5 minutes)
    X-KuaiPin-Signature: "v1=" + hex HMAC-SHA256(signing secret, f"{timestamp}.{raw body}")

Deliveries get lost (``skip``) and re-sent (``duplicates``), as real ones do. For what was missed the
vendor keeps every event it created and serves it again, with an API token of its own:

    GET /v1/deliveries?since=<ISO-8601>&limit=&cursor=    Authorization: Bearer <api token>
        -> {"data": [event, ...], "next_cursor": "<opaque>" | null}; ``since`` is inclusive on
           ``created_at``; events in creation order.

Events exist once ``emit`` (first results) or ``rescore`` (a new version of a result) created them;
only those are replayed. ``created_at`` follows the result's update time (November 2026), so
tests can reason about windows without waiting.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

import requests

from simulators.dataset import InterviewDataset, InterviewResult, rescored
from simulators.server import Request, Response, SimServer, error_response, json_response

REPLAY_PATH = "/v1/deliveries"
DELIVERY_HEADER = "X-KuaiPin-Delivery"
TIMESTAMP_HEADER = "X-KuaiPin-Timestamp"
SIGNATURE_HEADER = "X-KuaiPin-Signature"
SIGNATURE_PREFIX = "v1="


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """The vendor's signature header value (written here independently of the receiver's check)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


class KuaiPinSimulator(SimServer):
    """Attributes for tests: ``events`` (every created event, in order), ``defects`` (result ids with
    a broken resident ID), ``signing_secret``, ``api_token``."""

    def __init__(self, count: int = 200, seed: int = 7, defect_rate: float = 0.03, *,
                 signing_secret: str = "kuaipin-signing-secret", api_token: str = "kuaipin-api-token",
                 page_limit_max: int = 200, port: int = 0) -> None:
        super().__init__(port)
        self.signing_secret, self.api_token, self.page_limit_max = signing_secret, api_token, page_limit_max
        self.defects: set[str] = set()
        self.events: list[dict[str, Any]] = []
        self._rng = random.Random(f"kuaipin:{seed}")
        self._lock = threading.Lock()
        dataset = InterviewDataset(seed, result_prefix="KP", candidate_prefix="KPC",
                                   video_base="https://media.kuaipin.example/v/",
                                   report_base="https://open.kuaipin.example/report/")
        self._pending: list[InterviewResult] = sorted(dataset.results(count), key=lambda r: r.updated_at)
        self._latest: dict[str, InterviewResult] = {}
        defect_idx = set(self._rng.sample(range(count), round(defect_rate * count)))
        self._defective = {self._pending[i].result_id for i in defect_idx}

    # The names tests.helpers.connect() reads: the replay API's connection holds the API token.
    @property
    def client_id(self) -> str:
        return "kuaipin"

    @property
    def client_secret(self) -> str:
        return self.api_token

    # -- the vendor creates events --------------------------------------------------------------
    def emit(self, n: int) -> list[dict[str, Any]]:
        """The next ``n`` interviews complete: one ``interview.result.completed`` event each."""
        with self._lock:
            batch, self._pending = self._pending[:n], self._pending[n:]
            return [self._add("interview.result.completed", res, res.updated_at) for res in batch]

    def rescore(self, n: int) -> list[dict[str, Any]]:
        """``n`` clean results get a new version (``interview.result.updated``), stamped now."""
        with self._lock:
            eligible = sorted(r for r in self._latest if r not in self.defects)
            chosen = sorted(self._rng.sample(eligible, n))
            stamp = max(datetime.now(timezone.utc).replace(microsecond=0),
                        _parse(self.events[-1]["created_at"]) + timedelta(seconds=1))
            return [self._add("interview.result.updated", rescored(self._latest[rid], self._rng, stamp), stamp)
                    for rid in chosen]

    def _add(self, kind: str, res: InterviewResult, created: datetime) -> dict[str, Any]:
        self._latest[res.result_id] = res
        data = vendor_record(res)
        if res.result_id in self._defective and res.version == 1:
            good = data["candidate"]["id_number"]
            data["candidate"]["id_number"] = good[:-1] + ("0" if good[-1] != "0" else "1")
            self.defects.add(res.result_id)
        event = {"id": f"kp_evt_{len(self.events) + 1:08d}", "type": kind, "created_at": _iso(created), "data": data}
        self.events.append(event)
        return event

    # -- the vendor pushes ----------------------------------------------------------------------
    def headers(self, event_id: str, body: bytes, *, timestamp: int | None = None,
                secret: str | None = None) -> dict[str, str]:
        ts = int(time.time()) if timestamp is None else timestamp
        return {"Content-Type": "application/json; charset=utf-8", DELIVERY_HEADER: event_id,
                TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: signature(secret or self.signing_secret, ts, body)}

    def post(self, url: str, event: dict[str, Any], *, timestamp: int | None = None, secret: str | None = None,
             body: bytes | None = None, session: requests.Session | None = None,
             delivery_id: str | None = None) -> int:
        """One delivery; the overrides make stale, wrongly signed or tampered deliveries for tests
        (``body`` is sent as is, the signature is over the event's own body; ``delivery_id`` puts
        another id in the header, as an attacker replaying a captured delivery would)."""
        signed = encode(event)
        headers = self.headers(delivery_id or event["id"], signed, timestamp=timestamp, secret=secret)
        return (session or requests).post(url, data=body if body is not None else signed, headers=headers,
                                          timeout=(5, 60)).status_code

    def push(self, url: str, events: Iterable[dict[str, Any]], *, skip: Iterable[str] = (), duplicates: int = 0,
             concurrency: int = 8) -> Counter[int]:
        """Deliver ``events`` concurrently, except the ids in ``skip`` (lost in transit); then re-send
        ``duplicates`` of the delivered ones again (as a vendor does when an answer got lost).
        Returns how many deliveries got each HTTP status (0: no answer)."""
        skipped = set(skip)
        sent = [e for e in events if e["id"] not in skipped]
        again = self._rng.sample(sent, min(duplicates, len(sent)))
        local = threading.local()

        def one(event: dict[str, Any]) -> int:
            if not hasattr(local, "session"):
                local.session = requests.Session()
            try:
                return self.post(url, event, session=local.session)
            except requests.RequestException:
                return 0

        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            statuses = list(pool.map(one, sent)) + list(pool.map(one, again))
        return Counter(statuses)

    # -- the replay API -------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if request.path != REPLAY_PATH:
            return error_response(404, "not_found")
        if request.method != "GET":
            return error_response(405, "method_not_allowed", headers={"Allow": "GET"})
        if not hmac.compare_digest(request.headers.get("Authorization", ""), f"Bearer {self.api_token}"):
            return error_response(401, "unauthorized", headers={"WWW-Authenticate": "Bearer"})
        try:
            since = _parse(request.arg("since", "1970-01-01T00:00:00Z"))
            limit = int(request.arg("limit", "100"))
            start = int(request.arg("cursor", "0"))
        except ValueError:
            return error_response(400, "bad_request", "since must be ISO-8601; limit and cursor integers")
        if not 1 <= limit <= self.page_limit_max or start < 0:
            return error_response(400, "bad_request", f"limit must be 1-{self.page_limit_max}")
        with self._lock:
            # The cursor is a position in the append-only event log: stable while events are added.
            chosen, position = [], start
            for position in range(start, len(self.events)):
                if _parse(self.events[position]["created_at"]) >= since:
                    chosen.append(self.events[position])
                    if len(chosen) == limit:
                        break
            more = len(chosen) == limit and position + 1 < len(self.events)
        return json_response(200, {"data": chosen, "next_cursor": str(position + 1) if more else None})


def vendor_record(res: InterviewResult) -> dict[str, Any]:
    c, p, ev = res.candidate, res.position, res.evaluation
    return {
        "result_id": res.result_id,
        "version": res.version,
        "candidate": {"uid": c.candidate_id, "name": c.name, "id_number": c.id_card, "mobile": c.mobile_written,
                      "email": c.email},
        "position": {"code": p.code, "name": p.title, "department": p.department, "business_unit": p.business_unit},
        "started_at": res.started_at.isoformat(),
        "finished_at": res.finished_at.isoformat(),
        "score": ev.total_score,
        "dimensions": [{"code": d.code, "name": d.name, "score": d.score, "comment": d.comment} for d in ev.dimensions],
        "comment": ev.comment,
        "recommendation": ev.recommendation,
        "result": ev.result,
        "video": {"url": res.video_url, "expires_at": res.video_expires_at.isoformat()},
        "report_url": res.report_url,
        "updated_at": _iso(res.updated_at),
    }


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("since needs a UTC offset")
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the KuaiPin push-vendor simulator on 127.0.0.1 and push "
                                                 "its events to a webhook receiver.")
    parser.add_argument("--port", type=int, default=8083)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--push", metavar="URL", help="receiver URL, e.g. http://127.0.0.1:8090/webhooks/kuaipin")
    parser.add_argument("--skip", type=int, default=0, help="lose this many deliveries (for the replay to find)")
    args = parser.parse_args(argv)
    sim = KuaiPinSimulator(args.count, port=args.port)
    url = sim.start()
    events = sim.emit(args.count)
    print(f"KuaiPin simulator: replay API {url}{REPLAY_PATH}  events={len(events)}  (Ctrl-C to stop)", flush=True)
    if args.push:
        lost = {e["id"] for e in events[:args.skip]}
        print(f"pushed: {dict(sim.push(args.push, events, skip=lost))} (HTTP status: count)", flush=True)
    sim.serve_forever()


if __name__ == "__main__":
    main()

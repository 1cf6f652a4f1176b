"""AIView: a simulated AI-interview vendor with OAuth2 client credentials and cursor pagination.

    POST /oauth/token                   client_credentials (form fields or HTTP Basic)
    GET  /v1/interview-results          ?updated_since=<ISO-8601 with offset>&limit=&cursor=

The feed is a change feed: records with updated_at >= updated_since, ordered by
(updated_at, result_id); a re-scored result appears once per version. Records are serialised
once at construction and kept as bytes, so a 500-record page is a join, not 500 json.dumps.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import functools
import json
import math
import random
import secrets
import threading
import time
from bisect import bisect_left, bisect_right
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote_plus

from simulators.dataset import (Evaluation, InterviewDataset, InterviewResult, Position, rescored,
                                rescored_evaluation)
from simulators.faults import FaultKnobs
from simulators.server import Request, Response, SimServer, error_response, json_response, \
    raw_json_response

DEFECT_KINDS = ("bad_id_checksum", "missing_required", "score_out_of_range", "malformed_time")
FULL_SCORE = 100
# Pre-generated re-scores land here: after every first version (the last November interview
# is updated by 2026-11-30T16:00Z) and before the wall clock of anyone running this in December.
RESCORE_WINDOW_START = datetime(2026, 12, 1, tzinfo=timezone.utc)
RESCORE_WINDOW_SECONDS = 12 * 3600
# With ``distinct_updated_at`` set, first versions pile onto a few instants from here on.
TIE_BASE = datetime(2026, 11, 30, 16, 0, tzinfo=timezone.utc)

Key = tuple[int, str]  # (updated_at as epoch seconds, result_id): unique per version


class AIViewSimulator(FaultKnobs, SimServer):
    """Attributes for tests: ``defects`` (result_id -> defect kind), ``rescored`` (result ids with
    more than one version, pre-generated or from ``rescore``), plus the SimServer fault knobs
    ``outage``, ``latency``, ``retry_after`` and the ``requests`` per-path counter, and the scripted
    faults of ``FaultKnobs`` (``fail``, ``truncate``, ``before``; none unless scheduled)."""

    def __init__(self, count: int = 2000, seed: int = 7, defect_rate: float = 0.03,
                 rescore_rate: float = 0.05, client_id: str = "hiresync",
                 client_secret: str = "aiview-secret", token_ttl: int = 3600,
                 page_limit_max: int = 500, *, port: int = 0,
                 distinct_updated_at: int | None = None) -> None:
        """``distinct_updated_at``: for tests, give first versions only that many distinct
        updated_at values (one second apart), so ties straddle page boundaries."""
        super().__init__(port)
        if distinct_updated_at is not None and not 0 < distinct_updated_at <= 8 * 3600:
            raise ValueError("distinct_updated_at must be between 1 and 28800")
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_ttl = token_ttl
        self.page_limit_max = page_limit_max
        self.defects: dict[str, str] = {}
        self.rescored: set[str] = set()
        self._tokens: dict[str, float] = {}   # token -> monotonic expiry
        self._lock = threading.Lock()
        # Defects and re-scores draw from their own stream so the facts stay identical to a
        # plain InterviewDataset with the same seed.
        self._rng = random.Random(f"aiview:{seed}")
        self._keys: list[Key] = []
        self._bodies: list[bytes] = []
        self._latest: dict[str, int] = {}     # result_id -> index of its newest version
        self._build(count, seed, defect_rate, rescore_rate, distinct_updated_at)

    # -- data -------------------------------------------------------------------------------
    def _build(self, count: int, seed: int, defect_rate: float, rescore_rate: float,
               distinct_updated_at: int | None) -> None:
        rng = self._rng
        defect_idx = rng.sample(range(count), round(defect_rate * count))
        # Kinds go round-robin over a random order, so each kind gets a quarter and no pattern.
        defect_kind = {i: DEFECT_KINDS[j % len(DEFECT_KINDS)] for j, i in enumerate(defect_idx)}
        clean = [i for i in range(count) if i not in defect_kind]
        rescore_idx = set(rng.sample(clean, min(len(clean), round(rescore_rate * count))))

        keys: list[Key] = []
        bodies: list[bytes] = []
        dataset = InterviewDataset(seed, result_prefix="AV-", candidate_prefix="AVC-",
                                   video_base="https://video.aiview.example/v/",
                                   report_base="https://report.aiview.example/r/")
        for i, res in enumerate(dataset.results(count)):
            if distinct_updated_at:
                res.updated_at = TIE_BASE + timedelta(seconds=i % distinct_updated_at)
            kind = defect_kind.get(i)
            if kind is None:
                body = vendor_json(res)
            else:
                record = vendor_record(res)
                self._apply_defect(record, kind, rng)
                self.defects[res.result_id] = kind
                body = _dumps(record)
            keys.append(_key(res.updated_at, res.result_id))
            bodies.append(body)
            if i in rescore_idx:
                when = RESCORE_WINDOW_START + timedelta(
                    seconds=rng.randrange(RESCORE_WINDOW_SECONDS))
                res2 = rescored(res, rng, when)
                keys.append(_key(res2.updated_at, res2.result_id))
                bodies.append(vendor_json(res2))
                self.rescored.add(res.result_id)

        order = sorted(range(len(keys)), key=keys.__getitem__)
        self._keys = [keys[i] for i in order]
        self._bodies = [bodies[i] for i in order]
        # Later versions sort later, so the last assignment is the newest version.
        self._latest = {rid: pos for pos, (_, rid) in enumerate(self._keys)}

    @staticmethod
    def _apply_defect(record: dict[str, Any], kind: str, rng: random.Random) -> None:
        if kind == "bad_id_checksum":
            good = record["candidate"]["id_card"]
            wrong = rng.choice([c for c in "0123456789X" if c != good[-1]])
            record["candidate"]["id_card"] = good[:-1] + wrong
        elif kind == "missing_required":
            if rng.random() < 0.5:
                del record["candidate"]["name"]
            else:
                del record["job"]["code"]
        elif kind == "score_out_of_range":
            record["evaluation"]["total_score"] = round(FULL_SCORE + rng.uniform(5, 40), 1)
        elif kind == "malformed_time":
            record["interview"]["finished_at"] = f"2026-13-{rng.randint(32, 45)} 25:61"
        else:
            raise ValueError(kind)

    def records(self) -> list[dict[str, Any]]:
        """Every version in feed order, decoded (for assertions in tests)."""
        with self._lock:
            bodies = list(self._bodies)
        return [json.loads(b) for b in bodies]

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def max_updated_at(self) -> str | None:
        with self._lock:
            return _iso_utc(self._keys[-1][0]) if self._keys else None

    def rescore(self, n: int) -> list[str]:
        """Bump ``n`` more clean, not yet re-scored results to a new version stamped now (UTC).

        The stamp is at least one second after the newest updated_at in the feed, so a pull
        with updated_since > the previous maximum sees exactly these results.
        """
        with self._lock:
            eligible = sorted(rid for rid in self._latest
                              if rid not in self.defects and rid not in self.rescored)
            if n > len(eligible):
                raise ValueError(f"only {len(eligible)} results left to re-score")
            chosen = sorted(self._rng.sample(eligible, n))
            now = int(time.time())
            stamp = max(now, self._keys[-1][0] + 1) if self._keys else now
            for rid in chosen:
                record = json.loads(self._bodies[self._latest[rid]])
                ev = record["evaluation"]
                new = rescored_evaluation(ev["total_score"],
                                          {d["code"]: d["score"] for d in ev["dimensions"]},
                                          self._rng)
                record["evaluation"] = _evaluation(new)
                record["updated_at"] = _iso_utc(stamp)
                # Appending keeps the lists sorted: stamp is later than every key and the
                # chosen ids are in order.
                self._keys.append((stamp, rid))
                self._bodies.append(_dumps(record))
                self._latest[rid] = len(self._keys) - 1
                self.rescored.add(rid)
            return chosen

    def put_raw(self, body: bytes, updated_at: int, result_id: str) -> None:
        """Serve `body` verbatim (any bytes: bad encodings, deep nesting, huge fields) as the version
        of `result_id` stamped `updated_at` (epoch seconds), in feed order. For bad-data tests."""
        with self._lock:
            pos = bisect_right(self._keys, (updated_at, result_id))
            self._keys.insert(pos, (updated_at, result_id))
            self._bodies.insert(pos, body)
            self._latest = {rid: i for i, (_, rid) in enumerate(self._keys)}

    # -- auth -------------------------------------------------------------------------------
    def revoke_tokens(self) -> None:
        """Invalidate every issued token (clients must fetch a new one after the 401)."""
        with self._lock:
            self._tokens.clear()

    def _token(self, req: Request) -> Response:
        if req.method != "POST":
            return error_response(405, "method_not_allowed", headers={"Allow": "POST"})
        form = req.form()
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = _basic_credentials(req.headers.get("Authorization"))
        if basic is not None:
            client_id, client_secret = basic
        if form.get("grant_type") != "client_credentials":
            error = "invalid_request" if "grant_type" not in form else "unsupported_grant_type"
            return error_response(400, error)
        if not (secrets.compare_digest(client_id or "", self.client_id)
                and secrets.compare_digest(client_secret or "", self.client_secret)):
            headers = {"WWW-Authenticate": 'Basic realm="aiview"'} if basic else None
            return error_response(401, "invalid_client", headers=headers)
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = time.monotonic() + self.token_ttl
        return json_response(200, {"access_token": token, "token_type": "Bearer",
                                   "expires_in": self.token_ttl},
                             {"Cache-Control": "no-store"})

    def _authorized(self, req: Request) -> bool:
        scheme, _, token = (req.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        with self._lock:
            expiry = self._tokens.get(token.strip())
            if expiry is None:
                return False
            if time.monotonic() >= expiry:
                del self._tokens[token.strip()]
                return False
        return True

    # -- feed -------------------------------------------------------------------------------
    def _results(self, req: Request) -> Response:
        if req.method != "GET":
            return error_response(405, "method_not_allowed", headers={"Allow": "GET"})
        if not self._authorized(req):
            return error_response(401, "invalid_token",
                                  headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        try:
            limit = _parse_limit(req.arg("limit"), self.page_limit_max)
            since = _parse_since(req.arg("updated_since"))
            after = _decode_cursor(req.arg("cursor"))
        except ValueError as exc:
            return error_response(400, "invalid_request", str(exc))
        with self._lock:
            start = 0
            if since is not None:
                start = bisect_left(self._keys, (since, ""))
            if after is not None:
                start = max(start, bisect_right(self._keys, after))
            end = min(start + limit, len(self._keys))
            page = self._bodies[start:end]
            next_key = self._keys[end - 1] if end < len(self._keys) else None
        next_cursor = b"null" if next_key is None else b'"' + _encode_cursor(next_key) + b'"'
        return raw_json_response(
            200, b'{"data":[' + b",".join(page) + b'],"next_cursor":' + next_cursor + b"}")

    def handle(self, request: Request) -> Response:
        if request.path == "/oauth/token":
            return self._token(request)
        if request.path == "/v1/interview-results":
            return self._results(request)
        return error_response(404, "not_found")


# -- wire format ------------------------------------------------------------------------------
def vendor_record(res: InterviewResult) -> dict[str, Any]:
    c, p = res.candidate, res.position
    return {
        "result_id": res.result_id,
        "candidate": {"id": c.candidate_id, "name": c.name, "id_card": c.id_card,
                      "mobile": c.mobile_written, "email": c.email},
        "job": {"code": p.code, "title": p.title, "department": p.department,
                "business_unit": p.business_unit},
        "interview": {"started_at": res.started_at.isoformat(),
                      "finished_at": res.finished_at.isoformat(),
                      "video": {"url": res.video_url,
                                "expires_at": res.video_expires_at.isoformat()},
                      "report_url": res.report_url},
        "evaluation": _evaluation(res.evaluation),
        "status": "completed",
        "updated_at": _iso_utc(res.updated_at),
    }


def vendor_json(res: InterviewResult) -> bytes:
    """``_dumps(vendor_record(res))``, about 5x faster: building 100k dicts and running json.dumps
    on them dominated start-up. Safe because every string comes from the dataset's own
    alphabets (no quotes, backslashes or control characters); a test pins both to the same JSON.
    """
    c, ev = res.candidate, res.evaluation
    dims = []
    for d in ev.dimensions:
        head, tail = _dimension_json(d.code, d.name, d.comment)
        dims.append(f"{head}{d.score!r}{tail}")
    return (
        f'{{"result_id":"{res.result_id}",'
        f'"candidate":{{"id":"{c.candidate_id}","name":"{c.name}","id_card":"{c.id_card}",'
        f'"mobile":"{c.mobile_written}","email":"{c.email}"}},'
        f'"job":{_job_json(res.position)},'
        f'"interview":{{"started_at":"{res.started_at.isoformat()}",'
        f'"finished_at":"{res.finished_at.isoformat()}",'
        f'"video":{{"url":"{res.video_url}","expires_at":"{res.video_expires_at.isoformat()}"}},'
        f'"report_url":"{res.report_url}"}},'
        f'"evaluation":{{"total_score":{ev.total_score!r},"full_score":{FULL_SCORE},'
        f'"dimensions":[{",".join(dims)}],"comment":"{ev.comment}",'
        f'"recommendation":"{ev.recommendation}",'
        f'"result":"{ev.result}"}},'
        f'"status":"completed","updated_at":"{_iso_utc(res.updated_at)}"}}'
    ).encode("utf-8")


# A dozen positions and 21 dimension comments: their JSON is built once.
@functools.cache
def _job_json(p: Position) -> str:
    return json.dumps({"code": p.code, "title": p.title, "department": p.department,
                       "business_unit": p.business_unit}, ensure_ascii=False, separators=(",", ":"))


@functools.cache
def _dimension_json(code: str, name: str, comment: str) -> tuple[str, str]:
    return (f'{{"code":"{code}","name":"{name}","score":',
            f',"full_score":{FULL_SCORE},"comment":"{comment}"}}')


def _evaluation(ev: Evaluation) -> dict[str, Any]:
    return {"total_score": ev.total_score, "full_score": FULL_SCORE,
            "dimensions": [{"code": d.code, "name": d.name, "score": d.score,
                            "full_score": FULL_SCORE, "comment": d.comment}
                           for d in ev.dimensions],
            "comment": ev.comment, "recommendation": ev.recommendation, "result": ev.result}


def _dumps(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _key(updated_at: datetime, result_id: str) -> Key:
    return int(updated_at.timestamp()), result_id


def _iso_utc(moment: datetime | int) -> str:
    """2026-11-03T01:45:00Z: second precision, so updated_at strings sort like the keys."""
    if isinstance(moment, int):
        moment = datetime.fromtimestamp(moment, timezone.utc)
    if moment.tzinfo is timezone.utc and not moment.microsecond:  # the common case, 2x faster
        return moment.isoformat()[:19] + "Z"
    return moment.astimezone(timezone.utc).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def _parse_limit(value: str | None, maximum: int) -> int:
    if value is None:
        return min(100, maximum)
    if not value.isdigit() or not 1 <= int(value) <= maximum:
        raise ValueError(f"limit must be an integer between 1 and {maximum}")
    return int(value)


def _parse_since(value: str | None) -> int | None:
    """Epoch of the first whole second >= updated_since (updated_at has second precision)."""
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        dt = None
    if dt is None or dt.tzinfo is None:
        raise ValueError("updated_since must be ISO-8601 with a UTC offset, e.g. "
                         "2026-11-01T00:00:00+08:00 (URL-encode the '+')")
    return math.ceil(dt.timestamp())


def _encode_cursor(key: Key) -> bytes:
    return base64.urlsafe_b64encode(f"v1|{key[0]}|{key[1]}".encode()).rstrip(b"=")


def _decode_cursor(value: str | None) -> Key | None:
    if value is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        version, epoch, result_id = raw.split("|")
        if version != "v1" or not result_id:
            raise ValueError
        return int(epoch), result_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValueError("invalid cursor") from None


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded.strip()).decode().partition(":")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    # RFC 6749 2.3.1: client id and secret are form-urlencoded before Basic encoding.
    return unquote_plus(user), unquote_plus(password)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the AIView vendor simulator on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--defect-rate", type=float, default=0.03)
    parser.add_argument("--rescore-rate", type=float, default=0.05)
    parser.add_argument("--client-id", default="hiresync")
    parser.add_argument("--page-limit-max", type=int, default=500)
    args = parser.parse_args(argv)
    sim = AIViewSimulator(args.count, args.seed, args.defect_rate, args.rescore_rate,
                          client_id=args.client_id, port=args.port, page_limit_max=args.page_limit_max)
    url = sim.start()
    # The secret stays out of the output: it is the constructor default (see the docs).
    print(f"AIView simulator: {url}  client_id={sim.client_id}  "
          f"results={args.count} versions={len(sim)}  (Ctrl-C to stop)", flush=True)
    sim.serve_forever()


if __name__ == "__main__":
    main()

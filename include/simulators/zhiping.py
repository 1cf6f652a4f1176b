"""ZhiPing (智评): a simulated AI-interview vendor in the style of Chinese open platforms.

    GET /open/v1/interview/list   ?app_key=&timestamp=&nonce=&sign=&start_time=&page_no=&page_size=

- Signed requests: every query parameter but ``sign`` and empty ones, sorted by name, written
  ``k=v&k=v`` with raw values; ``sign`` = upper-case hex HMAC-SHA256 keyed with the app secret
  (``sign_method="md5"``: MD5 of the text + ``&key=<secret>``). ``timestamp`` in epoch seconds,
  within 5 minutes; a ``nonce`` is accepted once.
- Envelope on HTTP 200, errors included: ``{"code":0,"msg":"success","data":{"list":[...],"total":N}}``;
  40001 bad signature, 40002 stale timestamp, 40003 nonce replayed, 40004 bad parameter,
  40005 unknown app key, 42900 too many requests (``busy`` knob).
- Page numbers over the current state of each interview (one row per interview, updated in
  place), sorted by ``update_time`` then ``interview_id``; ``start_time`` is inclusive.
- Times are Asia/Shanghai wall-clock time without an offset (``2026-11-03 09:45:00``); scores on a
  0-5 scale; status and recommendation are integer codes.

Fault knobs: those of ``SimServer`` (``outage``, ``latency``, ``retry_after``) and ``FaultKnobs``
(``fail``, ``truncate``, ``before``), plus ``busy`` (the next n requests get code 42900).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import random
import threading
import time
from bisect import bisect_left, insort
from datetime import datetime, timedelta, timezone
from typing import Any

from simulators.dataset import SHANGHAI, InterviewDataset, InterviewResult, rescored_evaluation
from simulators.faults import FaultKnobs
from simulators.server import Request, Response, SimServer, error_response, json_response

LIST_PATH = "/open/v1/interview/list"
SCALE = 5
STATUS_CODE = {"pass": 1, "fail": 2, "pending": 3}
SUGGEST_CODE = {"recommend": 1, "hold": 2, "reject": 3}
DEFECT_KINDS = ("bad_id_checksum", "missing_name", "unknown_status")
TIMESTAMP_TOLERANCE = 300
LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"
TIE_BASE = datetime(2026, 12, 1, 0, 0, tzinfo=timezone.utc)

Key = tuple[int, str]  # (update_time as epoch seconds, interview_id)


class ZhiPingSimulator(FaultKnobs, SimServer):
    """Attributes for tests: ``defects`` (interview_id -> kind), ``busy``, plus the knobs above."""

    def __init__(self, count: int = 300, seed: int = 7, defect_rate: float = 0.03,
                 app_key: str = "hiresync-app", app_secret: str = "zhiping-secret",
                 sign_method: str = "hmac_sha256", page_size_max: int = 100, *, port: int = 0,
                 distinct_update_times: int | None = None) -> None:
        """``distinct_update_times``: give every interview one of only that many update times
        (one second apart), so results sharing an update time straddle page boundaries."""
        super().__init__(port)
        if sign_method not in ("hmac_sha256", "md5"):
            raise ValueError("sign_method must be hmac_sha256 or md5")
        self.app_key, self.app_secret, self.sign_method = app_key, app_secret, sign_method
        self.page_size_max = page_size_max
        self.busy = 0
        self.defects: dict[str, str] = {}
        self._rng = random.Random(f"zhiping:{seed}")
        self._lock = threading.Lock()
        self._nonces: set[str] = set()
        self._rows: dict[str, dict[str, Any]] = {}   # interview_id -> current record
        self._keys: list[Key] = []                   # sorted; one per interview
        self._build(count, seed, defect_rate, distinct_update_times)

    # The names tests.helpers.connect() reads: app key and secret are the connection's login and password.
    @property
    def client_id(self) -> str:
        return self.app_key

    @property
    def client_secret(self) -> str:
        return self.app_secret

    # -- data -------------------------------------------------------------------------------
    def _build(self, count: int, seed: int, defect_rate: float, distinct: int | None) -> None:
        rng = self._rng
        defect_idx = rng.sample(range(count), round(defect_rate * count))
        kinds = {i: DEFECT_KINDS[j % len(DEFECT_KINDS)] for j, i in enumerate(defect_idx)}
        dataset = InterviewDataset(seed, result_prefix="ZP", candidate_prefix="ZPC",
                                   video_base="https://v.zhiping.example/play/",
                                   report_base="https://open.zhiping.example/report/")
        for i, res in enumerate(dataset.results(count)):
            if distinct:
                res.updated_at = TIE_BASE + timedelta(seconds=i % distinct)
            record = vendor_record(res)
            if i in kinds:
                _apply_defect(record, kinds[i], rng)
                self.defects[res.result_id] = kinds[i]
            self._rows[res.result_id] = record
            self._keys.append((_epoch(record["update_time"]), res.result_id))
        self._keys.sort()

    def records(self) -> list[dict[str, Any]]:
        """The current row of every interview, in feed order (for assertions in tests)."""
        with self._lock:
            return [dict(self._rows[rid]) for _, rid in self._keys]

    def __len__(self) -> int:
        return len(self._keys)

    def rescore(self, ids: list[str] | None = None, n: int = 0) -> list[str]:
        """Re-score the given interviews (or ``n`` clean ones) in place, stamped now (Beijing
        time) and at least one second after every other update: they move to the feed's end."""
        with self._lock:
            if ids is None:
                eligible = sorted(r for r in self._rows if r not in self.defects)
                ids = sorted(self._rng.sample(eligible, n))
            stamp = max(int(time.time()), self._keys[-1][0] + 1)
            for rid in ids:
                row = self._rows[rid]
                old = (_epoch(row["update_time"]), rid)
                del self._keys[bisect_left(self._keys, old)]
                scores = {d["dim_code"]: d["score"] * 20 for d in row["dimensions"]}
                ev = rescored_evaluation(round(row["score"] * 20, 1), scores, self._rng)
                row.update(_evaluation(ev))
                row["update_time"] = _local(datetime.fromtimestamp(stamp, timezone.utc))
                insort(self._keys, (stamp, rid))
            return list(ids)

    # -- the API ----------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if request.path != LIST_PATH:
            return error_response(404, "not_found")
        if request.method != "GET":
            return error_response(405, "method_not_allowed", headers={"Allow": "GET"})
        params = {k: v[0] for k, v in request.query.items()}
        if (problem := self._check_signature(params)) is not None:
            return _envelope(*problem)
        with self._lock:
            if self.busy > 0:
                self.busy -= 1
                return _envelope(42900, "请求过于频繁，请稍后重试")
        try:
            since = _parse_local(params.get("start_time"))
            page_no = _positive(params.get("page_no", "1"), "page_no", 10**6)
            page_size = _positive(params.get("page_size", "20"), "page_size", self.page_size_max)
        except ValueError as exc:
            return _envelope(40004, f"参数错误: {exc}")
        with self._lock:
            first = bisect_left(self._keys, (since, "")) if since is not None else 0
            window = self._keys[first:]
            start = (page_no - 1) * page_size
            rows = [self._rows[rid] for _, rid in window[start:start + page_size]]
            return _envelope(0, "success", {"list": rows, "total": len(window),
                                            "page_no": page_no, "page_size": page_size})

    def _check_signature(self, params: dict[str, str]) -> tuple[int, str] | None:
        if params.get("app_key") != self.app_key:
            return 40005, "app_key不存在"
        try:
            ts = int(params.get("timestamp", ""))
        except ValueError:
            return 40002, "timestamp无效"
        if abs(time.time() - ts) > TIMESTAMP_TOLERANCE:
            return 40002, "timestamp已过期"
        if not hmac.compare_digest(params.get("sign", ""), self.expected_sign(params)):
            return 40001, "签名错误"
        nonce = params.get("nonce", "")
        with self._lock:
            if not nonce or nonce in self._nonces:
                return 40003, "nonce重复"
            self._nonces.add(nonce)
        return None

    def expected_sign(self, params: dict[str, str]) -> str:
        text = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k] != "")
        if self.sign_method == "md5":
            return hashlib.md5(f"{text}&key={self.app_secret}".encode()).hexdigest().upper()  # noqa: S324
        return hmac.new(self.app_secret.encode(), text.encode(), hashlib.sha256).hexdigest().upper()


# -- wire format ------------------------------------------------------------------------------
def vendor_record(res: InterviewResult) -> dict[str, Any]:
    c, p = res.candidate, res.position
    return {
        "interview_id": res.result_id,
        "candidate": {"candidate_no": c.candidate_id, "real_name": c.name, "id_no": c.id_card,
                      "phone": c.mobile_written, "email": c.email},
        "position": {"position_code": p.code, "position_name": p.title, "dept_name": p.department,
                     "bu_name": p.business_unit},
        "begin_time": _local(res.started_at),
        "end_time": _local(res.finished_at),
        **_evaluation(res.evaluation),
        "video_url": res.video_url,
        "video_expire_time": _local(res.video_expires_at),
        "report_url": res.report_url,
        "update_time": _local(res.updated_at),
    }


def _evaluation(ev) -> dict[str, Any]:
    return {
        "score": round(ev.total_score / 100 * SCALE, 2),
        "dimensions": [{"dim_code": d.code, "dim_name": d.name, "score": round(d.score / 100 * SCALE, 2),
                        "remark": d.comment} for d in ev.dimensions],
        "ai_comment": ev.comment,
        "suggest": SUGGEST_CODE[ev.recommendation],
        "status": STATUS_CODE[ev.result],
    }


def _apply_defect(record: dict[str, Any], kind: str, rng: random.Random) -> None:
    if kind == "bad_id_checksum":
        good = record["candidate"]["id_no"]
        record["candidate"]["id_no"] = good[:-1] + rng.choice([c for c in "0123456789X" if c != good[-1]])
    elif kind == "missing_name":
        record["candidate"]["real_name"] = ""
    elif kind == "unknown_status":
        record["status"] = 9
    else:
        raise ValueError(kind)


def _envelope(code: int, msg: str, data: Any = None) -> Response:
    return json_response(200, {"code": code, "msg": msg, "data": data})


def _local(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime(LOCAL_FORMAT)


def _epoch(local_text: str) -> int:
    return int(datetime.strptime(local_text, LOCAL_FORMAT).replace(tzinfo=SHANGHAI).timestamp())


def _parse_local(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return _epoch(value)
    except ValueError:
        raise ValueError("start_time须为yyyy-MM-dd HH:mm:ss") from None


def _positive(value: str, name: str, maximum: int) -> int:
    if not value.isdigit() or not 1 <= int(value) <= maximum:
        raise ValueError(f"{name}须为1-{maximum}的整数")
    return int(value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the ZhiPing vendor simulator on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    sim = ZhiPingSimulator(args.count, args.seed, port=args.port)
    url = sim.start()
    print(f"ZhiPing simulator: {url}  app_key={sim.app_key}  interviews={len(sim)}  (Ctrl-C to stop)", flush=True)
    sim.serve_forever()


if __name__ == "__main__":
    main()

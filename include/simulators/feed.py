"""A small configurable vendor feed for testing the profile language's other styles over real HTTP:

    GET /api/results   ?since=<epoch ms, inclusive>  + the paging parameters of ``paging``

``auth``: ``api_key_header`` (X-Api-Key), ``api_key_query`` (?api_key=), ``basic``, ``bearer``
(the key is ``secret``; basic also needs ``user``). ``paging``: ``link`` (RFC 8288 Link header,
?page=), ``next_url`` (``next`` in the body, relative), ``offset`` (?offset=&limit=, ``total``).
Records are AIView-shaped (``simulators.aiview.vendor_record``) plus ``modified_ms``, the epoch
milliseconds the feed is sorted and filtered by.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any
from urllib.parse import urlencode

from simulators.aiview import vendor_record
from simulators.dataset import InterviewDataset
from simulators.faults import FaultKnobs
from simulators.server import Request, Response, SimServer, error_response, json_response

PATH = "/api/results"
AUTHS = ("api_key_header", "api_key_query", "basic", "bearer")
PAGINGS = ("link", "next_url", "offset")


class FeedSimulator(FaultKnobs, SimServer):
    def __init__(self, auth: str, paging: str, count: int = 60, seed: int = 5, page_size: int = 25, *,
                 user: str = "hiresync", secret: str = "feed-key", port: int = 0) -> None:
        super().__init__(port)
        if auth not in AUTHS or paging not in PAGINGS:
            raise ValueError(f"auth in {AUTHS}, paging in {PAGINGS}")
        self.auth, self.paging, self.page_size = auth, paging, page_size
        self.client_id, self.client_secret = user, secret  # what tests.helpers.connect() reads
        rows = []
        for res in InterviewDataset(seed, result_prefix="FD-", candidate_prefix="FDC-").results(count):
            record = vendor_record(res)
            record["modified_ms"] = int(res.updated_at.timestamp() * 1000)
            rows.append(record)
        self.rows = sorted(rows, key=lambda r: (r["modified_ms"], r["result_id"]))

    def _authorized(self, req: Request) -> bool:
        header = req.headers.get("Authorization") or ""
        if self.auth == "api_key_header":
            given = req.headers.get("X-Api-Key") or ""
        elif self.auth == "api_key_query":
            given = req.arg("api_key") or ""
        elif self.auth == "bearer":
            given = header[7:] if header.startswith("Bearer ") else ""
        else:
            try:
                given = base64.b64decode(header[6:]).decode() if header.startswith("Basic ") else ""
            except ValueError:
                given = ""
            return secrets.compare_digest(given, f"{self.client_id}:{self.client_secret}")
        return secrets.compare_digest(given, self.client_secret)

    def handle(self, request: Request) -> Response:
        if request.path != PATH:
            return error_response(404, "not_found")
        if not self._authorized(request):
            return error_response(401, "unauthorized")
        try:
            since = int(request.arg("since") or 0)
            if self.paging == "offset":
                start, size = int(request.arg("offset") or 0), int(request.arg("limit") or self.page_size)
            else:
                start, size = (int(request.arg("page") or 1) - 1) * self.page_size, self.page_size
        except ValueError:
            return error_response(400, "invalid_request")
        window = [r for r in self.rows if r["modified_ms"] >= since]
        page = window[start:start + size]
        body: dict[str, Any] = {"items": page, "total": len(window)}
        headers: dict[str, str] = {}
        more = start + size < len(window)
        if self.paging != "offset" and more:
            query = {"since": since, "page": start // self.page_size + 2}
            if self.auth == "api_key_query":
                query["api_key"] = self.client_secret  # vendors echo the whole query back
            link = f"{PATH}?{urlencode(query)}"
            if self.paging == "link":
                headers["Link"] = f'<{self.url}{link}>; rel="next", <{self.url}{PATH}>; rel="first"'
            else:
                body["next"] = link
        return json_response(200, body, headers)


# -- an enveloped, camelCase vendor with epoch-millisecond times -------------------------------------
ENVELOPED_PATH = "/openapi/v2/assessments"
BAD_KEY = 40101


class EnvelopedFeedSimulator(FaultKnobs, SimServer):
    """"NovoHire": ``GET /openapi/v2/assessments?modifiedSince=<epoch ms>&offset=&limit=`` with the
    key in ``X-Api-Key``; every answer is HTTP 200 with ``{"code", "message", "data": {"records",
    "total"}}`` (a wrong key is ``code 40101``). Records are camelCase, every time is epoch
    milliseconds (``modifiedTime: 1764052200000``), scores are on 0-10, the resident ID is written
    in groups (``110105 19491231 002X``) and the AI comment has line breaks.

    The feed is filtered and sorted by the time a row was *published* (``published_ms``, not sent),
    as vendors filter by their own change log: ``resend_stale`` publishes an older version of a
    result again (its old ``modifiedTime``, a different score), what a vendor's backfill does.
    """

    def __init__(self, count: int = 60, seed: int = 41, *, secret: str = "novo-key", port: int = 0) -> None:
        super().__init__(port)
        self.client_id, self.client_secret = "hiresync", secret
        self.rows: list[dict[str, Any]] = []
        for res in InterviewDataset(seed, result_prefix="NV-", candidate_prefix="NVC-").results(count):
            self.rows.append(self.record(res))
        self.rows.sort(key=lambda r: (r["published_ms"], r["resultId"]))

    @staticmethod
    def record(res, *, modified_ms: int | None = None, score_delta: float = 0.0) -> dict[str, Any]:
        c, p, ev = res.candidate, res.position, res.evaluation
        ms = modified_ms if modified_ms is not None else int(res.updated_at.timestamp() * 1000)
        score = min(100.0, max(0.0, ev.total_score + score_delta))
        verdict = {"pass": "PASS", "fail": "FAIL", "pending": "PENDING"}[ev.result]
        idc = c.id_card
        return {
            "resultId": res.result_id,
            "candidate": {"candidateId": c.candidate_id, "fullName": c.name,
                          "idNumber": f"{idc[:6]} {idc[6:14]} {idc[14:]}", "phone": c.mobile, "email": c.email},
            "position": {"code": p.code, "title": p.title, "dept": p.department},
            "startTime": int(res.started_at.timestamp() * 1000),
            "endTime": int(res.finished_at.timestamp() * 1000),
            "totalScore": round(score / 10, 2), "maxScore": 10,
            "verdict": verdict,
            "aiComment": ev.comment.replace("，", "，\n", 1),
            "dimensions": [{"dimCode": d.code, "dimName": d.name, "score": round(d.score / 10, 2), "remark": d.comment}
                           for d in ev.dimensions],
            "reportUrl": res.report_url,
            "modifiedTime": ms,
            "published_ms": ms,
        }

    def row(self, result_id: str) -> dict[str, Any]:
        return next(r for r in reversed(self.rows) if r["resultId"] == result_id)

    def _publish(self, row: dict[str, Any], published_ms: int) -> None:
        row["published_ms"] = published_ms
        self.rows.append(row)
        self.rows.sort(key=lambda r: (r["published_ms"], r["resultId"]))

    def rescore(self, result_id: str, total_score: float, modified_ms: int) -> None:
        """A newer version: new score, newer modifiedTime, published now."""
        row = {**self.row(result_id), "totalScore": total_score, "modifiedTime": modified_ms}
        self._publish(row, max(modified_ms, self.rows[-1]["published_ms"]))

    def resend_stale(self, result_id: str, total_score: float, modified_ms: int) -> None:
        """An older version (older modifiedTime) published again after everything else."""
        row = {**self.row(result_id), "totalScore": total_score, "modifiedTime": modified_ms}
        self._publish(row, self.rows[-1]["published_ms"])

    def handle(self, request: Request) -> Response:
        if request.path != ENVELOPED_PATH:
            return error_response(404, "not_found")
        if not secrets.compare_digest(request.headers.get("X-Api-Key") or "", self.client_secret):
            return json_response(200, {"code": BAD_KEY, "message": "invalid api key", "data": None})
        try:
            since = int(request.arg("modifiedSince") or 0)
            start, size = int(request.arg("offset") or 0), int(request.arg("limit") or 20)
        except ValueError:
            return json_response(200, {"code": 40000, "message": "bad parameter", "data": None})
        window = [r for r in self.rows if r["published_ms"] >= since]
        page = [{k: v for k, v in r.items() if k != "published_ms"} for r in window[start:start + size]]
        return json_response(200, {"code": 0, "message": "success", "data": {"records": page, "total": len(window)}})

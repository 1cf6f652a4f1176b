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

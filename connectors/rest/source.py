"""A declarative REST source: pages of raw vendor records since a watermark.

Who does what: urllib3's Retry retries GETs on 429/5xx with exponential backoff and jitter and
honours Retry-After; this module retries what urllib3 cannot see (a 200 whose body is cut off or
not JSON, an envelope code the profile marks as retryable), turns every failure into a typed
SourceError that names the source and the request (path only: the query can hold a signature),
and, for `seek` profiles, restarts paging from the newest cursor seen so that records shifting
between pages during a run are not skipped.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from datetime import datetime
from typing import Callable, Iterator
from urllib.parse import urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from connectors.connection import ConnectionSettings
from connectors.errors import SourceAuthError, SourceError, SourceResponseError, SourceUnavailable
from connectors.rest.auth import OAuth2ClientCredentials, auth_for
from connectors.rest.envelope import Envelope, select_records
from connectors.rest.incremental import Cursor, CursorFormat
from connectors.rest.limits import RateLimiter
from connectors.rest.paginators import Page, paginator_for
from connectors.rest.profile import RestProfile
from hiresync.privacy.redact import install_log_redaction

RETRY_STATUSES = (429, 500, 502, 503, 504)
install_log_redaction()  # urllib3 logs retried URLs, query (api key, sign) included


class _Retryable(Exception):
    """A response worth asking for again (cut-off body, a vendor's "busy" code)."""

    def __init__(self, cause: str, unavailable: bool):
        self.cause, self.unavailable = cause, unavailable


class RestSource:
    def __init__(self, profile: RestProfile, conn: ConnectionSettings,
                 sleep: Callable[[float], None] = time.sleep):
        self.profile = profile
        base = (conn.host or profile.base_url or "").rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise SourceError(profile.source, "configuration",
                              f"connection {conn.conn_id!r} has no http(s) host and the profile no base_url")
        self.base_url = base
        self.timeout = (profile.connect_timeout, profile.read_timeout)
        self.session = _session(profile)
        self.paginator = paginator_for(profile.paginator)
        self.auth = auth_for(profile.source, profile.auth, conn, base, self.session, self.timeout)
        self.envelope = Envelope(**profile.envelope) if profile.envelope else None
        self.cursor = Cursor(profile.cursor_field, CursorFormat(profile.cursor_format, profile.cursor_timezone),
                             profile.tie_breaker)
        self.limiter = RateLimiter(profile.requests_per_minute, sleep=sleep) if profile.requests_per_minute else None
        self._sleep = sleep

    def cursor_of(self, record: dict) -> datetime | None:
        """The record's cursor as an aware UTC datetime (None if missing or unreadable)."""
        return self.cursor.value_of(record)

    def pages(self, since: datetime) -> Iterator[list[dict]]:
        """Every page of records whose cursor is at or after `since`, in the vendor's order.

        The vendor's "since" parameter must be inclusive: records sharing the watermark's instant
        are read again (and found unchanged) rather than lost.
        """
        p = self.profile
        url = self.base_url + p.path
        params: dict | None = self._start_params(since)
        frontier, seen = since, set()  # seek: the cursor restarted from, the versions already yielded there
        while True:
            page = self._page(url, params)
            records = page.records
            restart = False
            if p.seek:
                records, newest = [], frontier
                for record in page.records:
                    version = self.cursor.version_of(record)
                    if version in seen:
                        continue  # re-read because the restart was inclusive: yielded already
                    records.append(record)
                    seen.add(version)
                    if version[0] is not None and version[0] > newest:
                        newest = version[0]
                if newest > frontier:
                    frontier, restart = newest, True
                    seen = {v for v in seen if v[0] is None or v[0] >= frontier}
            if records:
                yield records
            if not page.records:
                return
            nxt = self.paginator.next(page)
            if nxt is None:
                return
            if restart:
                # Page N of "since T" is only stable if nothing changes during the run; asking
                # "since <newest seen>, page 1" is, because updated records move to the end.
                url, params = self.base_url + p.path, self._start_params(frontier)
            elif nxt.url is not None:
                url, params = nxt.url, None
            else:
                params = {**(params or {}), **nxt.params}

    def _start_params(self, since: datetime) -> dict:
        p = self.profile
        return {**p.params, p.cursor_param: self.cursor.fmt.format(since), **self.paginator.first()}

    # -- one page ------------------------------------------------------------------------------
    def _page(self, url: str, params: dict | None) -> Page:
        request = f"GET {urlsplit(url).path}"
        budget = self.profile.max_retries
        for attempt in range(budget + 1):
            try:
                resp = self._send(url, params, request)
                body = self._body(resp, request)
                break
            except _Retryable as retry:
                if attempt == budget:
                    error = SourceUnavailable if retry.unavailable else SourceResponseError
                    raise error(self.profile.source, request,
                                f"{retry.cause}, {budget + 1} attempts") from None
                factor = self.profile.backoff_factor
                self._sleep(factor * 2 ** attempt + random.uniform(0, factor))
        records = select_records(body, self.profile.record_selector)
        if records is None:
            raise SourceResponseError(self.profile.source, request,
                                      f"no list of records at {self.profile.record_selector!r} in the response")
        return Page(url=url, params=params or {}, body=body, records=records, links=resp.links)

    def _send(self, url: str, params: dict | None, request: str) -> requests.Response:
        for attempt in (1, 2):
            if self.limiter:
                self.limiter.acquire()
            try:
                resp = self.session.get(url, params=params, auth=self.auth, timeout=self.timeout)
            except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
                raise _Retryable("the response was cut off", unavailable=False) from None
            except requests.exceptions.RetryError:
                raise SourceUnavailable(self.profile.source, request, "still failing after the retry budget") from None
            except requests.RequestException as exc:
                raise SourceUnavailable(self.profile.source, request, f"cannot reach the vendor ({type(exc).__name__})") from None
            if resp.status_code == 401 and attempt == 1 and isinstance(self.auth, OAuth2ClientCredentials):
                self.auth.invalidate()  # a token revoked or expired early: fetch a new one, once
                continue
            break
        if resp.status_code in (401, 403):
            raise SourceAuthError(self.profile.source, request, f"HTTP {resp.status_code}: access refused")
        if resp.status_code in RETRY_STATUSES:
            raise SourceUnavailable(self.profile.source, request, f"HTTP {resp.status_code} after the retry budget")
        if resp.status_code >= 300:
            raise SourceResponseError(self.profile.source, request, f"HTTP {resp.status_code}")
        return resp

    def _body(self, resp: requests.Response, request: str) -> dict:
        body = _parse(resp, self.profile.source, request)
        if not isinstance(body, dict):
            raise SourceResponseError(self.profile.source, request, "the response is not a JSON object")
        if self.envelope is not None:
            verdict = self.envelope.check(body)
            if not verdict.ok:
                cause = f"vendor code {verdict.code}" + (f": {verdict.message}" if verdict.message else "")
                if verdict.kind == "retry":
                    raise _Retryable(cause, unavailable=True)
                if verdict.kind == "auth":
                    raise SourceAuthError(self.profile.source, request, cause)
                raise SourceResponseError(self.profile.source, request, cause)
        return body


def _parse(resp: requests.Response, source: str, request: str):
    """The page's JSON, decoded strictly in its declared charset (UTF-8 by default).

    `resp.json()` decodes a declared charset with replacement, so a GBK name became U+FFFD and was
    loaded as such. Here bytes that are not valid in the charset stay as lone surrogates
    (surrogateescape), which the record check before staging quarantines as ENCODING: only the
    record holding them, not the page. A page nested too deep for the C parser's recursion limit
    is parsed again with room to spare, so the record check can quarantine the one deep record.
    """
    declared = requests.utils.get_encoding_from_headers(resp.headers)
    charset = (declared or "utf-8").lower()
    if charset in ("utf-8", "utf8"):
        try:
            return orjson.loads(resp.content)  # strict UTF-8, and the fast path
        except orjson.JSONDecodeError:
            pass  # invalid bytes, too deep, or not JSON at all: the careful path below tells which
    try:
        text = resp.content.decode(charset, errors="surrogateescape")
    except LookupError:
        raise SourceResponseError(source, request, f"the response declares an unknown charset {charset!r}") from None
    try:
        return json.loads(text)
    except RecursionError:
        return _loads_deep(text)
    except ValueError:
        raise _Retryable("the response is not valid JSON (cut off?)", unavailable=False) from None


def _loads_deep(text: str):
    """json.loads in a thread with a large stack and a high recursion limit (set only meanwhile)."""
    out: list = []

    def parse():
        try:
            out.append(json.loads(text))
        except (RecursionError, ValueError) as exc:
            out.append(exc)

    old_limit, old_stack = sys.getrecursionlimit(), threading.stack_size()
    sys.setrecursionlimit(max(old_limit, 200_000))
    threading.stack_size(512 * 1024 * 1024)
    try:
        worker = threading.Thread(target=parse)
        worker.start()
        worker.join()
    finally:
        threading.stack_size(old_stack)
        sys.setrecursionlimit(old_limit)
    if isinstance(out[0], Exception):
        raise _Retryable("the response is not valid JSON (nested beyond any limit, or cut off)", unavailable=False)
    return out[0]


def _session(profile: RestProfile) -> requests.Session:
    retry = Retry(
        total=profile.max_retries, connect=profile.max_retries, read=profile.max_retries,
        status=profile.max_retries, backoff_factor=profile.backoff_factor,
        backoff_jitter=profile.backoff_factor,  # up to one more backoff unit, so clients do not retry in step
        status_forcelist=RETRY_STATUSES, allowed_methods={"GET"}, respect_retry_after_header=True,
        retry_after_max=int(profile.max_retry_after), raise_on_status=False,
    )
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session

"""A declarative REST source: pages of raw vendor records since a watermark."""

from __future__ import annotations

from datetime import datetime
from typing import Iterator

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from connectors.connection import ConnectionSettings
from connectors.errors import SourceAuthError, SourceError, SourceResponseError, SourceUnavailable
from connectors.records import get_path
from connectors.rest.auth import BearerToken, OAuth2ClientCredentials
from connectors.rest.paginators import paginator_for
from connectors.rest.profile import RestProfile

RETRY_STATUSES = (429, 500, 502, 503, 504)


class RestSource:
    def __init__(self, profile: RestProfile, conn: ConnectionSettings):
        self.profile = profile
        base = (conn.host or profile.base_url or "").rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise SourceError(profile.source, "configuration",
                              f"connection {conn.conn_id!r} has no http(s) host and the profile no base_url")
        self.base_url = base
        self.timeout = (profile.connect_timeout, profile.read_timeout)
        self.session = _session(profile)
        self.paginator = paginator_for(profile.paginator)
        if profile.auth["type"] == "oauth2_client_credentials":
            self.auth = OAuth2ClientCredentials(
                profile.source, base + profile.auth["token_path"], conn, self.session, self.timeout,
                scope=profile.auth.get("scope"), refresh_margin=profile.auth.get("refresh_margin_seconds", 60))
        else:
            self.auth = BearerToken(conn)

    def pages(self, since: datetime) -> Iterator[list[dict]]:
        """Every page of records whose cursor field is at or after `since`, in the vendor's order."""
        params = {**self.profile.params, self.profile.cursor_param: since.isoformat()}
        while True:
            body = self._get(self.profile.path, params)
            records = get_path(body, self.profile.record_selector)
            if not isinstance(records, list):
                raise SourceResponseError(self.profile.source, f"GET {self.profile.path}",
                                          f"no list of records at {self.profile.record_selector!r} in the response")
            yield records
            next_params = self.paginator.next_params(body)
            if next_params is None or not records:
                return
            params = {**params, **next_params}

    def _get(self, path: str, params: dict) -> dict:
        request = f"GET {path}"
        for attempt in (1, 2):
            try:
                resp = self.session.get(self.base_url + path, params=params, auth=self.auth, timeout=self.timeout)
            except requests.exceptions.RetryError:
                raise SourceUnavailable(self.profile.source, request, "still failing after the retry budget") from None
            except requests.RequestException as exc:
                raise SourceUnavailable(self.profile.source, request, f"cannot reach the vendor ({type(exc).__name__})") from None
            if resp.status_code == 401 and attempt == 1 and isinstance(self.auth, OAuth2ClientCredentials):
                self.auth.invalidate()  # a token revoked before its expiry: fetch a new one, once
                continue
            break
        if resp.status_code in (401, 403):
            raise SourceAuthError(self.profile.source, request, f"HTTP {resp.status_code}: access refused")
        if resp.status_code in RETRY_STATUSES:
            raise SourceUnavailable(self.profile.source, request, f"HTTP {resp.status_code} after the retry budget")
        if resp.status_code >= 300:
            raise SourceResponseError(self.profile.source, request, f"HTTP {resp.status_code}")
        try:
            body = resp.json()
        except ValueError:
            raise SourceResponseError(self.profile.source, request, "the response is not valid JSON") from None
        if not isinstance(body, dict):
            raise SourceResponseError(self.profile.source, request, "the response is not a JSON object")
        return body


def _session(profile: RestProfile) -> requests.Session:
    retry = Retry(
        total=profile.max_retries, connect=profile.max_retries, read=profile.max_retries,
        status=profile.max_retries, backoff_factor=profile.backoff_factor, backoff_jitter=0.2,
        status_forcelist=RETRY_STATUSES, allowed_methods={"GET"}, respect_retry_after_header=True,
        raise_on_status=False,
    )
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session

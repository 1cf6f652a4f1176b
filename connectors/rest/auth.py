"""Auth strategies as requests' AuthBase: the session stays unaware of how a vendor signs in."""

from __future__ import annotations

import threading
import time

from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase

from connectors.connection import ConnectionSettings
from connectors.errors import SourceAuthError, SourceUnavailable


class BearerToken(AuthBase):
    """A static token kept in the connection's password."""

    def __init__(self, conn: ConnectionSettings):
        self._token = conn.password or ""

    def __call__(self, r):
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r


class OAuth2ClientCredentials(AuthBase):
    """Client-credentials grant: the token is cached and fetched again shortly before it expires.

    `invalidate()` lets the caller force one refresh after a 401 (a token revoked early)."""

    def __init__(self, source: str, token_url: str, conn: ConnectionSettings, session: requests.Session,
                 timeout: tuple[float, float], scope: str | None = None, refresh_margin: float = 60):
        self._source, self._token_url, self._conn = source, token_url, conn
        self._session, self._timeout, self._scope, self._margin = session, timeout, scope, refresh_margin
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    def __call__(self, r):
        r.headers["Authorization"] = f"Bearer {self._current()}"
        return r

    def _current(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires - self._margin:
                self._token, ttl = self._fetch()
                self._expires = time.monotonic() + ttl
            return self._token

    def _fetch(self) -> tuple[str, float]:
        data = {"grant_type": "client_credentials", "client_id": self._conn.login or "",
                "client_secret": self._conn.password or ""}
        if self._scope:
            data["scope"] = self._scope
        request = f"POST {urlsplit(self._token_url).path}"
        try:
            resp = self._session.post(self._token_url, data=data, timeout=self._timeout)
        except requests.RequestException as exc:
            raise SourceUnavailable(self._source, request, f"cannot reach the vendor ({type(exc).__name__})") from None
        if resp.status_code in (400, 401, 403):
            raise SourceAuthError(self._source, request,
                                  f"credentials refused (HTTP {resp.status_code}); check connection {self._conn.conn_id!r}")
        if resp.status_code >= 300:
            raise SourceUnavailable(self._source, request, f"HTTP {resp.status_code}")
        try:
            body = resp.json()
            return body["access_token"], float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise SourceAuthError(self._source, request, "the token response has no access_token") from None

"""Auth strategies as requests' AuthBase: the session stays unaware of how a vendor signs in.

Every secret comes from the connection (login / password), never from the profile, and none is
ever put into an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from requests.auth import AuthBase, HTTPBasicAuth

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


class ApiKey(AuthBase):
    """A static key (the connection's password) in a header or a query parameter."""

    def __init__(self, conn: ConnectionSettings, name: str, where: str = "header", prefix: str = ""):
        self._key, self._name, self._where, self._prefix = conn.password or "", name, where, prefix

    def __call__(self, r):
        if self._where == "header":
            r.headers[self._name] = f"{self._prefix}{self._key}"
        else:
            r.prepare_url(r.url, {self._name: f"{self._prefix}{self._key}"})
        return r


class SignedRequest(AuthBase):
    """The signature style of Chinese open platforms (WeChat Pay v2, many HR SaaS APIs).

    To every request add app key (the connection's login), timestamp and nonce, then sign:
    the query parameters except the signature itself and empty values, sorted by name, written
    `k1=v1&k2=v2` with raw (not URL-encoded) values; `hmac_sha256` is HMAC-SHA256 of that text
    keyed with the secret (the connection's password); `md5` is MD5 of the text + `&key=<secret>`.
    Hex digest, upper case unless `uppercase: false`.
    """

    def __init__(self, conn: ConnectionSettings, algorithm: str = "hmac_sha256", app_key_param: str = "app_key",
                 timestamp_param: str = "timestamp", timestamp_unit: str = "s", nonce_param: str = "nonce",
                 sign_param: str = "sign", uppercase: bool = True):
        self._app_key, self._secret = conn.login or "", conn.password or ""
        self._algorithm, self._uppercase = algorithm, uppercase
        self._app_key_param, self._timestamp_param, self._timestamp_unit = app_key_param, timestamp_param, timestamp_unit
        self._nonce_param, self._sign_param = nonce_param, sign_param

    def __call__(self, r):
        parts = urlsplit(r.url)
        params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                  if k not in (self._app_key_param, self._timestamp_param, self._nonce_param, self._sign_param)]
        now = time.time()
        params += [(self._app_key_param, self._app_key),
                   (self._timestamp_param, str(int(now * 1000) if self._timestamp_unit == "ms" else int(now))),
                   (self._nonce_param, secrets.token_hex(8))]
        params.append((self._sign_param, self.sign(params)))
        r.url = urlunsplit(parts._replace(query=urlencode(params)))
        return r

    def sign(self, params: list[tuple[str, str]]) -> str:
        text = "&".join(f"{k}={v}" for k, v in sorted(params) if v != "" and k != self._sign_param)
        if self._algorithm == "md5":
            digest = hashlib.md5(f"{text}&key={self._secret}".encode()).hexdigest()  # noqa: S324 - the vendor's scheme
        else:
            digest = hmac.new(self._secret.encode(), text.encode(), hashlib.sha256).hexdigest()
        return digest.upper() if self._uppercase else digest


def auth_for(source: str, spec: dict, conn: ConnectionSettings, base_url: str, session: requests.Session,
             timeout: tuple[float, float]) -> AuthBase:
    """The auth strategy a profile's `auth:` block names."""
    kind = spec["type"]
    if kind == "oauth2_client_credentials":
        return OAuth2ClientCredentials(source, base_url + spec["token_path"], conn, session, timeout,
                                       scope=spec.get("scope"), refresh_margin=spec.get("refresh_margin_seconds", 60))
    if kind == "bearer":
        return BearerToken(conn)
    if kind == "basic":
        return HTTPBasicAuth(conn.login or "", conn.password or "")
    if kind == "api_key":
        return ApiKey(conn, spec["name"], spec.get("in", "header"), spec.get("prefix", ""))
    if kind == "signed":
        return SignedRequest(conn, **{k: v for k, v in spec.items() if k != "type"})
    raise ValueError(f"unknown auth type {kind!r}")  # the profile schema prevents this

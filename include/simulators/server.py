"""Base for loopback HTTP simulators of vendor APIs and target systems.

A subclass implements ``handle(request) -> Response``; this module supplies the threaded server,
fault knobs shared by every simulator (outage, latency, per-path request counts) and JSON helpers.
Standard library only, so a simulator runs anywhere the tests run.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hiresync.background_server import BackgroundServer

JSON_TYPE = "application/json; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any  # http.client.HTTPMessage: case-insensitive .get()
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    def form(self) -> dict[str, str]:
        """Body parsed as application/x-www-form-urlencoded (first value per key)."""
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] for k, v in parsed.items()}

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return raw_json_response(status, body, headers)


def raw_json_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    """For bodies assembled from pre-serialised fragments (the fast path for big pages)."""
    return Response(status, body, {"Content-Type": JSON_TYPE, **(headers or {})})


def error_response(status: int, error: str, message: str | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    payload = {"error": error} if message is None else {"error": error, "message": message}
    return json_response(status, payload, headers)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive, so a requests.Session does not pay a TCP handshake per call.
    protocol_version = "HTTP/1.1"
    # socketserver sets TCP_NODELAY on the accepted socket when this is true. Without it Nagle's
    # algorithm plus delayed ACKs stall every response on loopback (~40x fewer requests/s).
    disable_nagle_algorithm = True
    sim: "SimServer"  # set on the per-server subclass

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        # Always drain the body: leftovers would be parsed as the next request on a kept-alive
        # socket.
        body = self.rfile.read(length) if length > 0 else b""
        split = urlsplit(self.path)
        request = Request(self.command, split.path, parse_qs(split.query, keep_blank_values=True),
                          self.headers, body)
        response = self.sim._serve(request)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines can carry personal data in query strings: never print them.
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Idle keep-alive connections must not make stop() wait for their threads.
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients dropping connections mid-response is normal in fault tests; stay quiet.
        pass


class SimServer(BackgroundServer):
    """Threaded HTTP server on 127.0.0.1. Subclasses override ``handle``.

    Fault knobs (safe to flip from a test while requests are in flight):
    ``outage`` -> every request gets 503; ``latency`` -> seconds slept before answering;
    ``retry_after`` -> Retry-After header value sent with outage 503s (None: no header).
    """

    def __init__(self, port: int = 0) -> None:
        self.outage = False
        self.latency = 0.0
        self.retry_after: int | None = None
        self._port = port
        self._counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()

    # -- subclass API -----------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        return error_response(404, "not_found")

    # -- lifecycle (start, stop, serve_forever, url, with: BackgroundServer) --------------------
    poll_interval = 0.05
    not_started = "simulator not started"

    def _make_server(self) -> ThreadingHTTPServer:
        return _Server(("127.0.0.1", self._port), type("Handler", (_Handler,), {"sim": self}))

    # -- fault knobs ------------------------------------------------------------------------
    @property
    def requests(self) -> Counter[str]:
        """Snapshot of requests received per path (503s from an outage included)."""
        with self._counts_lock:
            return Counter(self._counts)

    def reset_requests(self) -> None:
        with self._counts_lock:
            self._counts.clear()

    def _serve(self, request: Request) -> Response:
        with self._counts_lock:
            self._counts[request.path] += 1
        if self.latency > 0:
            time.sleep(self.latency)
        if self.outage:
            headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
            return error_response(503, "service_unavailable", headers=headers)
        try:
            return self.handle(request)
        except Exception as exc:  # a simulator bug should surface as a 500, not a hung client
            return error_response(500, "internal_error", type(exc).__name__)

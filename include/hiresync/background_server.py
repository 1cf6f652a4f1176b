"""A threaded HTTP server run in a background thread: what the webhook receiver and the
simulators share. start() returns the URL, stop() frees the port, serve_forever() blocks until
Ctrl-C, and `with` does both ends."""

from __future__ import annotations

import io
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class BackgroundServer:
    """Subclasses say which server to run in `_make_server`."""

    poll_interval = 0.1
    not_started = "server not started"
    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def _make_server(self) -> ThreadingHTTPServer:
        raise NotImplementedError

    def start(self) -> str:
        if self._httpd is None:
            self._httpd = self._make_server()
            self._thread = threading.Thread(target=self._httpd.serve_forever,
                                            kwargs={"poll_interval": self.poll_interval},
                                            name=f"{type(self).__name__}-server", daemon=True)
            self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
            self._thread = None

    def serve_forever(self) -> None:
        """Foreground mode: block until Ctrl-C or SIGTERM (a service manager's stop), which both end
        it cleanly. Both are set here because a process started by one that ignores Ctrl-C
        inherits that, and Python then installs no handler of its own: Ctrl-C would do nothing."""
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _stop_like_ctrl_c)
        self.start()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError(self.not_started)
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stop_like_ctrl_c(*_) -> None:
    raise KeyboardInterrupt


class CappedThreadingHTTPServer(ThreadingHTTPServer):
    """A thread per connection, but at most `max_connections` at once: one more gets a short 503 and is
    closed without a thread, so a crowd of slow clients cannot exhaust threads or memory."""

    daemon_threads = True
    block_on_close = False
    max_connections = 256
    busy_answer = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                   b"Retry-After: 5\r\nConnection: close\r\nContent-Length: 34\r\n\r\n"
                   b'{"error": "busy, retry in a while"}')

    def server_activate(self) -> None:
        self._slots = threading.BoundedSemaphore(self.max_connections)
        super().server_activate()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            try:
                request.settimeout(1)
                request.sendall(self.busy_answer)
            except OSError:
                pass
            self.connection_refused()
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def connection_refused(self) -> None:
        """Told when a connection was turned away at the cap (for counts)."""


class _DeadlineReader(io.RawIOBase):
    """Reads from a socket, each read waiting no longer than what is left until the handler's deadline."""

    def __init__(self, sock: socket.socket, handler: "DeadlineHandler") -> None:
        self._sock, self._handler = sock, handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._handler.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("request deadline passed")
        self._sock.settimeout(min(left, self._handler.timeout or left))
        try:
            return self._sock.recv_into(buffer)
        finally:
            self._sock.settimeout(self._handler.timeout)  # writing the answer has its own timeout


class DeadlineHandler(BaseHTTPRequestHandler):
    """A request handler with a *total* deadline per request: the socket timeout alone bounds each read,
    so a client sending a byte every 25 s would hold its thread for ever. The clock starts when the
    handler waits for a request line (a new connection, or the next request on a kept-alive one) and
    covers the request line, the headers and the body; answering is not limited by it."""

    request_deadline = 60.0  # seconds for the whole request to arrive
    deadline = 0.0

    def setup(self) -> None:
        super().setup()
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self), self.rbufsize if self.rbufsize > 0
                                       else io.DEFAULT_BUFFER_SIZE)

    def handle_one_request(self) -> None:
        self.deadline = time.monotonic() + self.request_deadline
        super().handle_one_request()

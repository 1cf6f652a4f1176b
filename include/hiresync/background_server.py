"""A threaded HTTP server run in a background thread: what the webhook receiver and the
simulators share. start() returns the URL, stop() frees the port, serve_forever() blocks until
Ctrl-C, and `with` does both ends."""

from __future__ import annotations

import threading
import time
from http.server import ThreadingHTTPServer
from typing import Self


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
        """Foreground mode: block until Ctrl-C."""
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

"""The webhook receiver behind `hiresync webhook serve`: POST /webhooks/<source>.

For each delivery: the signature is checked over the raw bytes (pre-parse, constant time, timestamp
within the profile's tolerance), the body must be a JSON object, and the delivery is stored
encrypted in the hub's inbox in its own transaction *before* the 2xx goes out. A repeated delivery
id with the same body is answered 200 and not stored again, with another body 409 and an alert;
the body's delivery-id field must equal the header (the signature covers the body, not the
header); a stale or tampered one gets a 4xx; a hub that cannot
store gets a 503, so the vendor retries. Nothing else happens here: the sync run drains the inbox.

Standard library `ThreadingHTTPServer` (with TCP_NODELAY, HTTP/1.1 keep-alive) rather than
uvicorn/starlette: every delivery is one blocking SQLAlchemy transaction, which an ASGI server
would hand to a thread pool anyway; threads keep the code synchronous and short, the simulators
use the same server, and nothing new needs installing. 1,000 concurrent deliveries is the peak
(bench/webhook_load.py); put a TLS-terminating reverse proxy in front of it in production.

Logs name the source, the delivery id and the outcome; never a body, a header value or a secret.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any, Callable

from connectors.kinds import load_profile
from connectors.records import get_path
from connectors.webhook.profile import WebhookProfile
from connectors.webhook.signature import Rejected, verify
from hiresync.ingest import inbox
from hiresync.background_server import BackgroundServer, CappedThreadingHTTPServer, DeadlineHandler
from hiresync.config.connections import get_connection
from hiresync.errors import HireSyncError
from hiresync.hub.store import transaction
from hiresync.privacy.keys import hub_keys
from hiresync.config.settings import Settings
from hiresync.config.sources import load_sources

log = logging.getLogger(__name__)
PATH_PREFIX = "/webhooks/"
MAX_DELIVERY_ID = 128  # the inbox column's width


@dataclass(frozen=True)
class Endpoint:
    source: str
    profile: WebhookProfile
    secret: str = field(repr=False)  # never in a repr, a log or an error


def webhook_endpoints(settings: Settings, only: list[str] | None = None) -> dict[str, Endpoint]:
    """The `kind: webhook` sources of sources.yaml (or the ones named), with their signing secrets."""
    sources = load_sources(settings)
    unknown = [s for s in only or [] if s not in sources]
    if unknown:
        raise HireSyncError(f"no such source {unknown[0]!r} in {settings.sources_file}")
    out = {}
    for name, cfg in sources.items():
        if only and name not in only:
            continue
        profile = load_profile(cfg.profile)
        if not isinstance(profile, WebhookProfile):
            if only:
                raise HireSyncError(f"source {name!r} is not a webhook source (its profile is not kind: webhook)")
            continue
        secret = get_connection(profile.connection).password
        if not secret:
            raise HireSyncError(f"source {name!r}: connection {profile.connection!r} holds no signing secret "
                                "in its password")
        out[name] = Endpoint(name, profile, secret)
    if not out:
        raise HireSyncError(f"no webhook source in {settings.sources_file}")
    return out


class WebhookReceiver(BackgroundServer):
    """`start()` serves on host:port (0: any free port) in a background thread; `serve_forever()`
    in the foreground. `counts` says how many deliveries were stored, duplicate or rejected."""

    def __init__(self, settings: Settings, sources: list[str] | None = None, *, host: str = "127.0.0.1",
                 port: int = 0, alert: Callable[[str], None] | None = None, request_deadline: float = 60.0,
                 max_connections: int = 256) -> None:
        self.settings = settings
        self.alert = alert  # told (value-free text) when a known delivery id comes with another body
        self.endpoints = webhook_endpoints(settings, sources)
        self.keys = hub_keys(settings)
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._address = (host, port)
        # A slow client holds a thread for at most request_deadline seconds; beyond max_connections
        # at once, a connection gets a 503 without a thread (the vendor retries later).
        self.request_deadline = request_deadline
        self.max_connections = max_connections

    # -- lifecycle (start, stop, serve_forever, url, with: BackgroundServer) --------------------
    not_started = "receiver not started"

    def _make_server(self) -> ThreadingHTTPServer:
        server_class = type("Server", (_Server,), {"max_connections": self.max_connections, "receiver": self})
        return server_class(self._address, type("Handler", (_Handler,), {"receiver": self,
                                                                       "request_deadline": self.request_deadline}))

    def url_for(self, source: str) -> str:
        return f"{self.url}{PATH_PREFIX}{source}"

    # -- one delivery ---------------------------------------------------------------------------
    def receive(self, path: str, headers: Any, body: bytes) -> tuple[int, dict]:
        endpoint = self.endpoints.get(path.removeprefix(PATH_PREFIX)) if path.startswith(PATH_PREFIX) else None
        if endpoint is None:
            return 404, {"error": "no webhook source at this path"}
        p = endpoint.profile
        try:
            verify(endpoint.secret, headers.get(p.timestamp_header), headers.get(p.signature_header), body,
                   prefix=p.prefix, tolerance_seconds=p.tolerance_seconds)
            delivery_id = (headers.get(p.delivery_header) or "").strip()
            if not delivery_id or len(delivery_id) > MAX_DELIVERY_ID:
                raise Rejected(400, f"{p.delivery_header} header missing or longer than {MAX_DELIVERY_ID}")
            try:
                text = body.decode("utf-8")
                doc = json.loads(text)
                if not isinstance(doc, dict):
                    raise ValueError
            except ValueError:
                raise Rejected(400, "body is not a JSON object") from None
            # The signature covers the body, not the header: the id must be the signed one.
            if str(get_path(doc, p.delivery_id_field)) != delivery_id:
                raise Rejected(400, f"body field {p.delivery_id_field!r} does not equal the {p.delivery_header} header")
        except Rejected as rejected:
            self._count("rejected")
            log.warning("webhook %s: delivery rejected: %s", endpoint.source, rejected.reason)
            return rejected.status, {"error": rejected.reason}
        try:
            outcome = inbox.receive_retrying(lambda: transaction(self.settings.hub_url), self.keys, endpoint.source,
                                             delivery_id, text)
        except Exception as exc:  # noqa: BLE001 - any storage failure: not acknowledged, the vendor retries
            self._count("failed")
            log.error("webhook %s: delivery %s not stored (%s)", endpoint.source, delivery_id, type(exc).__name__)
            return 503, {"error": "not stored, retry later"}
        self._count(outcome)
        if outcome == "conflict":
            message = (f"webhook {endpoint.source}: delivery {delivery_id} arrived again with a different body; "
                       "refused (409), the stored delivery is kept. A vendor fault or a forged re-send: check "
                       "with the vendor before replaying.")
            log.error(message)
            self._alert(f"HireSync webhook 投递冲突: 来源 {endpoint.source} 的投递 {delivery_id} 以不同内容再次到达, "
                        "已拒绝 (409), 保留先前存储的投递。可能是供应商故障或伪造的重发, 请与供应商核实。")
            return 409, {"error": "this delivery id is known with a different body"}
        log.info("webhook %s: delivery %s %s", endpoint.source, delivery_id, outcome)
        return 200, {"status": outcome, "delivery_id": delivery_id}

    def _alert(self, message: str) -> None:
        if self.alert is None:
            return
        try:
            self.alert(message)
        except Exception as exc:  # noqa: BLE001 - an alert channel never fails a delivery's answer
            log.warning("webhook: alert not sent (%s)", type(exc).__name__)

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.counts[outcome] += 1


class _Handler(DeadlineHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a vendor pushing a burst reuses its connections
    disable_nagle_algorithm = True  # TCP_NODELAY: without it loopback throughput drops ~40x
    timeout = 30  # per read; the request as a whole has request_deadline (DeadlineHandler)
    receiver: WebhookReceiver

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length")
        limit = max((e.profile.max_body_bytes for e in self.receiver.endpoints.values()), default=1 << 20)
        if length is None:
            self.close_connection = True
            return self._answer(411, {"error": "Content-Length required"})
        if not (length.isascii() and length.isdigit()):  # '²' is a digit to str.isdigit, not to int()
            self.close_connection = True
            return self._answer(400, {"error": "Content-Length is not a number of bytes"})
        if int(length) > limit:
            self.close_connection = True  # the body is not read: the connection cannot be reused
            return self._answer(413, {"error": "body too large"})
        body = self.rfile.read(int(length))
        status, doc = self.receiver.receive(self.path.split("?", 1)[0], self.headers, body)
        self._answer(status, doc)

    def _refuse(self) -> None:
        self.close_connection = True
        self._answer(405, {"error": "only POST"}, {"Allow": "POST"})

    do_GET = do_PUT = do_PATCH = do_DELETE = _refuse

    def _answer(self, status: int, doc: dict, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(doc, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        for name, value in {"Content-Type": "application/json; charset=utf-8", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # request lines are not logged; receive() logs the outcome without values


class _Server(CappedThreadingHTTPServer):
    request_queue_size = 1024  # the default backlog of 5 refuses connections in a burst
    receiver: WebhookReceiver

    def connection_refused(self) -> None:
        self.receiver._count("busy")
        log.warning("webhook receiver: %d connections open, one more turned away (503)", self.max_connections)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.warning("webhook receiver: a connection failed mid-request")

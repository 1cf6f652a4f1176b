"""Where alerts go, on loopback: a chat robot webhook (DingTalk, WeCom, Feishu) and an SMTP server.

`ChatWebhookSimulator` captures each POST (path, query, JSON body) and answers like the robot of
its flavour: DingTalk/WeCom `{"errcode": 0, "errmsg": "ok"}`, Feishu `{"code": 0, "msg": "success"}`.
Knob `reject`: answer 200 with a non-zero code (what a robot does for a bad keyword or signature).

`SmtpSink` is a minimal SMTP server (socketserver; enough of RFC 5321 for smtplib: EHLO/HELO,
MAIL, RCPT, DATA, RSET, NOOP, QUIT) that keeps every message it receives. Standard library only:
Python 3.12 removed smtpd and aiosmtpd is not a dependency.
"""

from __future__ import annotations

import socketserver
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Self

from simulators.server import Request, Response, SimServer, json_response


@dataclass(frozen=True)
class Post:
    path: str
    query: dict[str, list[str]]
    body: Any


class ChatWebhookSimulator(SimServer):
    def __init__(self, flavour: str = "dingtalk", port: int = 0) -> None:
        super().__init__(port)
        self.flavour = flavour
        self.reject = False
        self.posts: list[Post] = []
        self._lock = threading.Lock()

    @property
    def hook_url(self) -> str:
        """A URL in the robot's style, its token in the query or the path, as the real ones carry it."""
        return {"dingtalk": f"{self.url}/robot/send?access_token=ding-token-secret",
                "wecom": f"{self.url}/cgi-bin/webhook/send?key=wecom-key-secret",
                "feishu": f"{self.url}/open-apis/bot/v2/hook/feishu-hook-secret"}[self.flavour]

    def handle(self, request: Request) -> Response:
        if request.method != "POST":
            return json_response(405, {"errcode": 405})
        with self._lock:
            self.posts.append(Post(request.path, request.query, request.json()))
        ok = not self.reject
        if self.flavour == "feishu":
            return json_response(200, {"code": 0, "msg": "success"} if ok else {"code": 19021, "msg": "sign match fail"})
        return json_response(200, {"errcode": 0, "errmsg": "ok"} if ok else {"errcode": 310000, "errmsg": "keywords not in content"})


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)


class _SmtpHandler(socketserver.StreamRequestHandler):
    sink: "SmtpSink"

    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self._reply("220 sink ESMTP")
        sender, recipients = None, []
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            verb, _, arg = raw.decode("utf-8", "replace").strip().partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                self.wfile.write(b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
            elif verb == "HELO":
                self._reply("250 sink")
            elif verb == "MAIL":
                sender, recipients = arg.partition(":")[2].split()[0].strip("<>"), []
                self._reply("250 OK")
            elif verb == "RCPT":
                recipients.append(arg.partition(":")[2].strip().strip("<>"))
                self._reply("250 OK")
            elif verb == "DATA":
                self._reply("354 end with <CRLF>.<CRLF>")
                lines = []
                for line in iter(self.rfile.readline, b""):
                    if line in (b".\r\n", b".\n"):
                        break
                    lines.append(line[1:] if line.startswith(b"..") else line)  # dot-stuffing
                with self.sink.lock:
                    self.sink.mails.append(Mail(sender or "", recipients, b"".join(lines)))
                self._reply("250 OK queued")
            elif verb in ("RSET", "NOOP"):
                self._reply("250 OK")
            elif verb == "QUIT":
                self._reply("221 bye")
                return
            else:
                self._reply("502 command not implemented")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False


@dataclass
class SmtpSink:
    mails: list[Mail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: _Server | None = None

    def start(self) -> None:
        handler = type("Handler", (_SmtpHandler,), {"sink": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

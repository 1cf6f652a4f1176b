"""Record selector and envelope: where the records are in a body, and whether a 200 is really a
success. Chinese open platforms answer HTTP 200 with `{"code": 40001, "msg": "签名错误"}`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from connectors.records import get_path
from hiresync.privacy.pii import mask_text

# Vendor messages sometimes quote the request back (an ID number, a phone, an e-mail, a link):
# hiresync.privacy.pii.mask_text masks those shapes; any other long digit run goes as well.
# E-mail addresses and links go whole: a vendor's message needs neither.
_DIGITS = re.compile(r"(?<!\d)\d[\d\s-]{5,}[\dXx](?![\dXx])")
_EMAIL_OR_LINK = re.compile(r"https?://[!-~]+|[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
MESSAGE_MAX = 80


def safe_message(text: object) -> str:
    """A vendor's message as an error may carry it: digit runs, e-mails, links masked; trimmed."""
    masked = _DIGITS.sub("***", mask_text(_EMAIL_OR_LINK.sub("***", str(text))))
    return masked if len(masked) <= MESSAGE_MAX else masked[: MESSAGE_MAX - 3] + "..."


@dataclass(frozen=True)
class Verdict:
    ok: bool
    kind: str = ""          # "auth" | "retry" | "error" when not ok
    code: str = ""
    message: str = ""


class Envelope:
    def __init__(self, code_path: str, success: list | None = None, message_path: str | None = None,
                 auth_codes: list | None = None, retry_codes: list | None = None):
        self.code_path, self.message_path = code_path, message_path
        # Vendors disagree on 0 versus "0"; compare as text.
        self.success = {str(v) for v in (success if success is not None else [0])}
        self.auth_codes = {str(v) for v in auth_codes or ()}
        self.retry_codes = {str(v) for v in retry_codes or ()}

    def check(self, body: dict) -> Verdict:
        code = get_path(body, self.code_path)
        if str(code) in self.success:
            return Verdict(True)
        message = safe_message(get_path(body, self.message_path)) if self.message_path else ""
        kind = "auth" if str(code) in self.auth_codes else "retry" if str(code) in self.retry_codes else "error"
        return Verdict(False, kind, safe_message(code), message)


def select_records(body: dict, selector: str) -> list | None:
    records = get_path(body, selector)
    return records if isinstance(records, list) else None

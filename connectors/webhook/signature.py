"""Checking a signed delivery: HMAC-SHA256 over f"{timestamp}.{raw body}" (Stripe's scheme).

The raw bytes are signed, so the body is checked before it is parsed; the comparison is constant
time; the timestamp is inside the signed text, so a captured delivery cannot be replayed after the
tolerance by changing the header. Rejections name the rule broken, never the secret or the body.
"""

from __future__ import annotations

import hashlib
import hmac
import time


class Rejected(Exception):
    """A delivery refused with a 4xx: `status` and a short reason the sender may see."""

    def __init__(self, status: int, reason: str):
        self.status, self.reason = status, reason
        super().__init__(f"{status} {reason}")


def expected_signature(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes, *, prefix: str = "",
           tolerance_seconds: int = 300, now: float | None = None) -> None:
    """Return if the delivery is authentic and fresh; raise Rejected otherwise."""
    if not timestamp or not signature:
        raise Rejected(400, "missing timestamp or signature header")
    if not (timestamp.isascii() and timestamp.isdigit()):  # '²' passes str.isdigit and breaks int()
        raise Rejected(400, "timestamp is not Unix seconds")
    age = (time.time() if now is None else now) - int(timestamp)
    if abs(age) > tolerance_seconds:
        raise Rejected(400, f"timestamp outside the {tolerance_seconds} s tolerance")
    given = signature[len(prefix):] if prefix and signature.startswith(prefix) else None if prefix else signature
    # compare_digest on equal-type ASCII: the time taken does not tell how much of it matched.
    if given is None or not hmac.compare_digest(given.encode("ascii", "replace"),
                                                expected_signature(secret, timestamp, body).encode()):
        raise Rejected(401, "signature does not match")

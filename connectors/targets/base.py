"""What a target tells the relay about each record it was given."""

from __future__ import annotations

from typing import NamedTuple


class Outcome(NamedTuple):
    """`sent`: the target holds it (`ref` = its own id); `dead`: refused for good (400, 422), do
    not retry; `retry`: not now (429, 409, 5xx, no answer). `reason` may quote the target's
    words, which can hold personal data: the relay masks it before storing it."""

    state: str
    http_status: int | None = None
    ref: str | None = None
    reason: str | None = None
    retry_after: float | None = None


class TargetError(Exception):
    """The target cannot be used as configured (credentials refused, no connection): delivery
    to this target stops, the rows stay as they were. The message names the target and the
    cause, never a secret or a response body."""

    def __init__(self, target: str, cause: str):
        self.target, self.cause = target, cause
        super().__init__(f"target {target!r}: {cause}")

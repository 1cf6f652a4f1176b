"""The incremental cursor: how a vendor writes the time a record last changed, and how it wants
the "since" parameter written back.

Vendors use ISO-8601, epoch seconds or milliseconds, or a local wall-clock format without an
offset ("2026-11-03 09:45:00", meaning Beijing time). Everything inside HireSync is an aware UTC
datetime; this class is the only place that converts.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from connectors.records import get_path

NAMED_FORMATS = ("iso", "epoch_s", "epoch_ms")


class CursorFormat:
    def __init__(self, fmt: str = "iso", tz: str = "UTC"):
        self.fmt = fmt
        self.tz = ZoneInfo(tz)

    def parse(self, raw: Any) -> datetime:
        """A vendor value -> aware UTC datetime. Raises ValueError when it does not fit the format."""
        if self.fmt in ("epoch_s", "epoch_ms"):
            if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
                raise ValueError("not an epoch number")
            seconds = float(raw) / (1000 if self.fmt == "epoch_ms" else 1)
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        if not isinstance(raw, str):
            raise ValueError("not a text time")
        text = raw.strip()
        if self.fmt == "iso":
            dt = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        else:
            dt = datetime.strptime(text, self.fmt)
        if dt.tzinfo is None:  # a naive vendor time is wall-clock time in the profile's timezone
            dt = dt.replace(tzinfo=self.tz)
        return dt.astimezone(timezone.utc)

    def format(self, moment: datetime) -> str:
        """An aware datetime as the vendor's "since" parameter expects it."""
        if self.fmt == "epoch_s":
            return str(int(moment.timestamp()))  # floor: an inclusive "since" must not skip a second
        if self.fmt == "epoch_ms":
            return str(int(moment.timestamp() * 1000))
        local = moment.astimezone(self.tz)
        return local.isoformat() if self.fmt == "iso" else local.strftime(self.fmt)


class Cursor:
    """The record field the watermark follows, its format, and the record's tie-breaker key."""

    def __init__(self, field: str, fmt: CursorFormat, tie_breaker: str | None = None):
        self.field, self.fmt, self.tie_breaker = field, fmt, tie_breaker

    def value_of(self, record: dict) -> datetime | None:
        """The record's cursor, or None when it is missing or broken (validation quarantines it)."""
        raw = get_path(record, self.field)
        if raw is None or raw == "":
            return None
        try:
            return self.fmt.parse(raw)
        except (ValueError, TypeError, OverflowError, OSError):
            return None

    def version_of(self, record: dict) -> tuple[datetime | None, str]:
        """(cursor, key): identifies one version of one record within a run."""
        key = get_path(record, self.tie_breaker) if self.tie_breaker else None
        return self.value_of(record), "" if key is None else str(key)

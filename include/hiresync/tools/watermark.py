"""`hiresync source reset-watermark`: put a source's watermark back where its data really is.

For a watermark carried ahead of the clock by a far-future record (before such records were
quarantined as FUTURE_CURSOR): by default it goes back to the newest `source_updated_at` the
hub holds for the source's vendor that is not in the future, or is removed (the next run pulls
from the profile's start) when there is none. The next run re-reads from there; what it finds
again is known and costs nothing (hiresync.load.known)."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import func, select

from hiresync.config.settings import Settings
from hiresync.config.sources import get_source
from hiresync.errors import HireSyncError
from hiresync.hub.models import InterviewResult, Watermark
from hiresync.hub.store import transaction
from hiresync.mapping.spec import MappingSpec


def reset_watermark(settings: Settings, source: str, to: datetime | None = None,
                    now: datetime | None = None) -> tuple[datetime | None, datetime | None]:
    """(watermark before, watermark after); after is None when the watermark was removed."""
    cfg = get_source(settings, source)
    now = now or datetime.now(timezone.utc)
    if to is not None and to.tzinfo is None:
        raise HireSyncError("--to needs a timezone offset, e.g. 2026-12-01T08:00:00+08:00")
    if to is not None and to > now:
        raise HireSyncError("--to is in the future: that would end the feed again")
    vendor = MappingSpec.load(settings.resolve(cfg.mapping)).vendor
    with transaction(settings.hub_url) as s:
        mark = s.get(Watermark, source, with_for_update=True)
        before = mark.cursor_value if mark else None
        if to is None:
            to = s.scalar(select(func.max(InterviewResult.source_updated_at)).where(
                InterviewResult.vendor == vendor, InterviewResult.source_updated_at <= now))
        if mark is not None and to is None:
            s.delete(mark)
        elif mark is not None:
            mark.cursor_value, mark.updated_at = to, now
    return before, to

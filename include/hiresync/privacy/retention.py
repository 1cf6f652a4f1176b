"""Retention: personal data the hub no longer needs is removed; a tombstone says what and when.

Nothing here decrypts anything. Rows are purged, not deleted, where the audit trail (record
lineage) still points at them: the payload goes, its hash and ids stay. Every copy is covered:
raw payloads, video links, quarantine, drained inbox deliveries, the bodies of sent (and dead)
outbox rows (they hold the resident ID and the video link: they go with the shorter of the raw
payload and video link lifetimes, counted from sending), and staging folders left by runs that
never finished (`staging_days`, default 7).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import and_, delete, exists, func, insert, or_, select, update

from hiresync.config.files import load_yaml_checked
from hiresync.hub.models import (
    AuditEvent, InboxDelivery, InterviewResult, Outbox, PerformanceRating, Quarantine, RawPayload,
)
from hiresync.hub.store import transaction
from hiresync.config.settings import Settings

BATCH = 1000
_SCHEMA = {
    "type": "object",
    "properties": {
        "retention": {
            "type": "object",
            "additionalProperties": False,
            "required": ["raw_payloads_days", "video_links_days", "quarantine_days"],
            "properties": {k: {"type": "integer", "minimum": 1}
                           for k in ("raw_payloads_days", "video_links_days", "quarantine_days", "staging_days",
                                     "performance_ratings_days")},
        },
    },
    "required": ["retention"],
}


@dataclass(frozen=True)
class Retention:
    raw_payloads: timedelta
    video_links: timedelta
    quarantine: timedelta
    staging: timedelta = timedelta(days=7)
    performance_ratings: timedelta = timedelta(days=3 * 365)

    @classmethod
    def load(cls, settings: Settings) -> "Retention":
        r = load_yaml_checked(settings.policy_file, _SCHEMA)["retention"]
        return cls(timedelta(days=r["raw_payloads_days"]), timedelta(days=r["video_links_days"]),
                   timedelta(days=r["quarantine_days"]), timedelta(days=r.get("staging_days", 7)),
                   timedelta(days=r.get("performance_ratings_days", 3 * 365)))


def purge(settings: Settings, now: datetime | None = None, actor: str = "retention") -> dict[str, int]:
    """Apply the retention policy; returns how many of each kind were purged."""
    now = now or datetime.now(timezone.utc)
    policy = Retention.load(settings)
    return {
        "quarantine": _batches(settings, lambda s: _quarantine(s, now - policy.quarantine, now, actor)),
        "raw_payloads": _batches(settings, lambda s: _raw_payloads(s, now - policy.raw_payloads, now, actor)),
        "video_links": _batches(settings, lambda s: _video_links(s, now - policy.video_links, actor)),
        "inbox": _batches(settings, lambda s: _drained_inbox(s, now - policy.raw_payloads, actor)),
        "outbox_bodies": _batches(settings, lambda s: _outbox_bodies(
            s, now - min(policy.raw_payloads, policy.video_links), actor)),
        "staging": _staging(settings, now - policy.staging, actor),
        "performance_ratings": _batches(settings, lambda s: _ratings(s, now - policy.performance_ratings, actor)),
    }


def has_body():
    """An outbox row that can still be sent: its own encrypted body, or a raw payload not yet purged
    to render it from. A row whose body retention purged is history only (outbox replay/retry skip it)."""
    return or_(Outbox.payload_enc.is_not(None),
               exists().where(RawPayload.id == Outbox.raw_payload_id, RawPayload.payload_enc.is_not(None)))


def _batches(settings: Settings, one_batch) -> int:
    total = 0
    while True:  # short transactions: syncs keep running during a large purge
        with transaction(settings.hub_url) as s:
            n = one_batch(s)
        total += n
        if n < BATCH:
            return total


def _tombstones(s, kind: str, actor: str, items: list[tuple[str, dict]]) -> None:
    if items:
        s.execute(insert(AuditEvent.__table__), [dict(kind=kind, subject_ref=ref, detail=detail, actor=actor)
                                                 for ref, detail in items])


def _quarantine(s, before: datetime, now: datetime, actor: str) -> int:
    rows = s.execute(select(Quarantine.id, Quarantine.source, Quarantine.vendor_result_id, Quarantine.reason_code,
                            Quarantine.raw_payload_id, Quarantine.created_at)
                     .where(Quarantine.created_at < before).limit(BATCH)).all()
    if not rows:
        return 0
    s.execute(delete(Quarantine).where(Quarantine.id.in_([r.id for r in rows])))
    # Their payloads were only kept for a replay that no longer can happen.
    s.execute(update(RawPayload).where(RawPayload.id.in_([r.raw_payload_id for r in rows]),
                                       RawPayload.payload_enc.is_not(None))
              .values(payload_enc=None, purged_at=now))
    _tombstones(s, "retention_purge", actor, [
        (f"quarantine:{r.id}", {"table": "quarantine", "source": r.source, "vendor_result_id": r.vendor_result_id,
                                "reason_code": r.reason_code, "created_at": r.created_at.isoformat()}) for r in rows])
    return len(rows)


def _raw_payloads(s, before: datetime, now: datetime, actor: str) -> int:
    in_open_quarantine = exists().where(Quarantine.raw_payload_id == RawPayload.id, Quarantine.status == "open")
    rows = s.execute(select(RawPayload.id, RawPayload.source, RawPayload.vendor_result_id, RawPayload.payload_hash,
                            RawPayload.received_at)
                     .where(RawPayload.received_at < before, RawPayload.payload_enc.is_not(None), ~in_open_quarantine)
                     .limit(BATCH)).all()
    if not rows:
        return 0
    s.execute(update(RawPayload).where(RawPayload.id.in_([r.id for r in rows])).values(payload_enc=None, purged_at=now))
    _tombstones(s, "retention_purge", actor, [
        (f"raw_payload:{r.id}", {"table": "raw_payloads", "source": r.source, "vendor_result_id": r.vendor_result_id,
                                 "payload_hash": r.payload_hash, "received_at": r.received_at.isoformat()})
        for r in rows])
    return len(rows)


def _video_links(s, before: datetime, actor: str) -> int:
    rows = s.execute(select(InterviewResult.id, InterviewResult.vendor, InterviewResult.vendor_result_id)
                     .where(InterviewResult.video_url_enc.is_not(None), InterviewResult.completed_at < before)
                     .limit(BATCH)).all()
    if not rows:
        return 0
    s.execute(update(InterviewResult).where(InterviewResult.id.in_([r.id for r in rows])).values(video_url_enc=None))
    _tombstones(s, "retention_purge", actor, [
        (f"result:{r.vendor}:{r.vendor_result_id}", {"table": "interview_results", "field": "video_url"})
        for r in rows])
    return len(rows)


def _drained_inbox(s, before: datetime, actor: str) -> int:
    # A drained delivery lives on as a raw payload; the inbox copy goes with the raw payloads' lifetime.
    rows = s.execute(select(InboxDelivery.id, InboxDelivery.source, InboxDelivery.delivery_id, InboxDelivery.run_id)
                     .where(InboxDelivery.status == "drained", InboxDelivery.received_at < before).limit(BATCH)).all()
    if not rows:
        return 0
    s.execute(delete(InboxDelivery).where(InboxDelivery.id.in_([r.id for r in rows])))
    _tombstones(s, "retention_purge", actor, [
        (f"inbox:{r.id}", {"table": "inbox", "source": r.source, "delivery_id": r.delivery_id, "run_id": r.run_id})
        for r in rows])
    return len(rows)


def _outbox_bodies(s, before: datetime, actor: str) -> int:
    """Bodies of rows that went out (or gave up) long enough ago: the row stays (the delivery history
    erase and `outbox status` use), its copy of the person's data goes."""
    done = and_(or_(and_(Outbox.status == "sent", func.coalesce(Outbox.sent_at, Outbox.created_at) < before),
                    and_(Outbox.status == "dead", Outbox.created_at < before)))
    rows = s.execute(select(Outbox.id, Outbox.target, Outbox.kind, Outbox.status)
                     .where(done, or_(Outbox.payload_enc.is_not(None), Outbox.raw_payload_id.is_not(None)))
                     .limit(BATCH)).all()
    if not rows:
        return 0
    s.execute(update(Outbox).where(Outbox.id.in_([r.id for r in rows])).values(payload_enc=None, raw_payload_id=None))
    _tombstones(s, "retention_purge", actor, [
        (f"outbox:{r.id}", {"table": "outbox", "target": r.target, "kind": r.kind, "status": r.status}) for r in rows])
    return len(rows)


def _staging(settings: Settings, before: datetime, actor: str) -> int:
    """Staging folders whose newest file is older than the lifetime: a run that never finished (a
    finished run removes its own). Its source is pulled again by the next run, so nothing is lost."""
    root = settings.staging_dir
    if not root.is_dir():
        return 0
    gone = []
    for folder in sorted(root.iterdir()):
        if not folder.is_dir() or folder.is_symlink():
            continue
        newest = max([folder.stat().st_mtime] + [f.stat().st_mtime for f in folder.iterdir()])
        if datetime.fromtimestamp(newest, timezone.utc) < before:
            shutil.rmtree(folder, ignore_errors=True)
            gone.append(folder.name)
    if gone:
        with transaction(settings.hub_url) as s:
            _tombstones(s, "retention_purge", actor, [(f"staging:{name}", {"table": "staging"}) for name in gone])
    return len(gone)


def _ratings(s, before: datetime, actor: str) -> int:
    # Performance ratings have their own lifetime (retention.performance_ratings_days), from when they came in.
    rows = s.execute(select(PerformanceRating.id, PerformanceRating.candidate_id, PerformanceRating.period)
                     .where(PerformanceRating.recorded_at < before).limit(BATCH)).all()
    if not rows:
        return 0
    s.execute(delete(PerformanceRating).where(PerformanceRating.id.in_([r.id for r in rows])))
    _tombstones(s, "retention_purge", actor, [
        (f"performance_rating:{r.id}", {"table": "performance_ratings", "candidate_id": r.candidate_id,
                                        "period": r.period}) for r in rows])
    return len(rows)

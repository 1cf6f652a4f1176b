"""What `hiresync outbox status | retry | replay` show and do. Nothing here decrypts a payload:
a listing names rows by result key and target id, and errors were masked when stored."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import func, select, update

from hiresync.hub.models import InterviewResult, Outbox
from hiresync.privacy.pii import mask_text
from hiresync.privacy.retention import has_body
from hiresync.hub.store import transaction
from hiresync.config.settings import Settings

DEAD_LISTED = 20


def status(settings: Settings, target: str | None = None, limit: int = DEAD_LISTED) -> dict:
    """Per target: rows by status, due now, waiting for a retry, the oldest pending; the latest dead letters."""
    now = datetime.now(timezone.utc)
    where = [Outbox.target == target] if target else []
    out: dict[str, dict] = {}
    with transaction(settings.hub_url) as s:
        for t, st, n in s.execute(select(Outbox.target, Outbox.status, func.count()).where(*where)
                                  .group_by(Outbox.target, Outbox.status)).all():
            out.setdefault(t, {"pending": 0, "sent": 0, "dead": 0})[st] = n
        for t, waiting, oldest in s.execute(
                select(Outbox.target, func.count(), func.min(Outbox.created_at))
                .where(Outbox.status == "pending", *where).group_by(Outbox.target)).all():
            out[t]["oldest_pending"] = oldest.isoformat() if oldest else None
        for t, n, nxt in s.execute(
                select(Outbox.target, func.count(), func.min(Outbox.next_attempt_at))
                .where(Outbox.status == "pending", Outbox.next_attempt_at > now, *where).group_by(Outbox.target)).all():
            out[t]["backing_off"], out[t]["next_attempt_at"] = n, nxt.isoformat() if nxt else None
        dead = s.execute(
            select(Outbox.id, Outbox.target, Outbox.kind, Outbox.attempts, Outbox.response_status, Outbox.last_error,
                   InterviewResult.vendor, InterviewResult.vendor_result_id)
            .outerjoin(InterviewResult, InterviewResult.id == Outbox.result_id)
            .where(Outbox.status == "dead", *where).order_by(Outbox.id.desc()).limit(limit)).all()
    for t in out.values():
        t.setdefault("backing_off", 0)
        t.setdefault("oldest_pending", None)
    total_dead = sum(t["dead"] for t in out.values())
    return {"targets": out, "dead_letters_total": total_dead, "dead_letters_cut": len(dead) < total_dead,
            "dead_letters": [
        {"id": d.id, "target": d.target, "kind": d.kind, "result": f"{d.vendor}:{d.vendor_result_id}" if d.vendor else None,
         "attempts": d.attempts, "response_status": d.response_status, "reason": mask_text(d.last_error) if d.last_error else None} for d in dead]}


def retry(settings: Settings, target: str | None = None, ids: list[int] | None = None) -> int:
    """Dead letters (and rows backing off) become due now: after the target or the data was fixed."""
    where = [Outbox.status.in_(["dead", "pending"]), has_body()]
    where += [Outbox.target == target] if target else []
    where += [Outbox.id.in_(ids)] if ids else []
    with transaction(settings.hub_url) as s:
        return s.execute(update(Outbox).where(*where).values(
            status="pending", next_attempt_at=None, claimed_until=None, claimed_by=None)).rowcount


def replay(settings: Settings, target: str, run_id: str | None = None, since: datetime | None = None) -> int:
    """Sent rows are sent again (a target restored from a backup). Same idempotency keys: a target
    that still holds a record does nothing twice."""
    where = [Outbox.target == target, Outbox.status == "sent", has_body()]  # not what retention purged
    where += [Outbox.run_id == run_id] if run_id else []
    where += [Outbox.sent_at >= since] if since else []
    with transaction(settings.hub_url) as s:
        return s.execute(update(Outbox).where(*where).values(
            status="pending", next_attempt_at=None, claimed_until=None, claimed_by=None)).rowcount

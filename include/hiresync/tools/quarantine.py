"""Quarantine: list what is held back and why, and replay it through the current mapping.

A replay is a run of its own (`<source>__replay__<time>`): the quarantined raw payloads are
decrypted from the hub into the run's staging and go through the normal validate -> map -> load ->
deliver steps, so the same checks, identity resolution, version guard and outbox apply. The
manifest marks it as a replay: it has no cursor (the watermark does not move) and is not judged
for schema drift (a batch of former failures would always look like drift).

After load, each quarantine row replayed is closed: `resolved` with the replay run id when its
payload now loaded (inserted, updated, or found unchanged / older than the hub), `replayed` when it
failed again (the replay run's own open quarantine row, with today's reasons, replaces it). So
replaying twice loads nothing twice and never doubles the open quarantine.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from typing import Callable

from sqlalchemy import select

from hiresync import jsonfast
from hiresync.hub.models import Quarantine, RawPayload, RecordLineage, Run
from hiresync.hub.store import transaction
from hiresync.pipeline.context import RunContext
from hiresync.config.settings import Settings
from hiresync.config.sources import get_source
from hiresync.privacy.payloads import open_payload


def open_rows(settings: Settings, source: str | None = None, reason: str | None = None) -> list[Quarantine]:
    """Open quarantine rows, oldest first. `reason` matches any of a row's rules, not only its first."""
    query = select(Quarantine).where(Quarantine.status == "open").order_by(Quarantine.id)
    if source:
        query = query.where(Quarantine.source == source)
    with transaction(settings.hub_url) as s:
        rows = list(s.scalars(query))
    if reason:
        rows = [q for q in rows if q.reason_code == reason or any(p.get("rule") == reason for p in q.problems)]
    return rows


def listing(settings: Settings, source: str | None = None, reason: str | None = None, limit: int | None = None) -> dict:
    """Open rows as people may see them: ids, reasons, masked values (masked when stored)."""
    rows = open_rows(settings, source, reason)
    shown = rows[:limit] if limit is not None else rows
    return {
        "open": len(rows),
        "shown": len(shown), "cut": len(shown) < len(rows),  # say when the list is cut
        "by_reason": dict(Counter(q.reason_code for q in rows).most_common()),
        "rows": [{"id": q.id, "source": q.source, "vendor_result_id": q.vendor_result_id, "run_id": q.run_id,
                  "reason": q.reason_code, "problems": q.problems, "created_at": q.created_at.isoformat()}
                 for q in shown],
    }


def replay(settings: Settings, source: str | None = None, reason: str | None = None,
           on_step: Callable[[str, str, dict], None] | None = None) -> list[dict]:
    """Replay the open rows (per source, one replay run each); returns the replay runs' summaries."""
    rows = open_rows(settings, source, reason)
    by_source: dict[str, list[Quarantine]] = {}
    for q in rows:
        by_source.setdefault(q.source, []).append(q)
    return [_replay_source(settings, name, qs, on_step) for name, qs in sorted(by_source.items())]


def _replay_source(settings: Settings, source: str, rows: list[Quarantine],
                   on_step: Callable[[str, str, dict], None] | None) -> dict:
    from hiresync.pipeline.deliver import deliver
    from hiresync.pipeline.load import load
    from hiresync.pipeline.runner import run_steps
    from hiresync.pipeline.transform import map_records
    from hiresync.pipeline.validate import validate

    get_source(settings, source)  # a source removed from sources.yaml: a clear error, not a KeyError
    ctx = RunContext.open(source, f"{source}__replay__{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}", settings)
    ctx.mapping  # a broken mapping stops the replay before anything is staged
    payload_ids = sorted({q.raw_payload_id for q in rows})
    with ctx.transaction() as s:
        stored = {p.id: p for p in s.scalars(select(RawPayload).where(RawPayload.id.in_(payload_ids)))}
        s.add(Run(id=ctx.run_id, source=source, status="extracting", pulled=len(payload_ids)))
        raws = [{"payload": jsonfast.loads(open_payload(s, ctx.keys, source, stored[i].payload_hash,
                                                        stored[i].payload_enc)),
                 "hash": stored[i].payload_hash} for i in payload_ids]
    ctx.staging.write_records("raw", raws)
    ctx.staging.write_json("manifest", {"source": source, "run_id": ctx.run_id, "since": None, "pulled": len(raws),
                                        "max_cursor": None, "replay": True,
                                        "quarantine_ids": [q.id for q in rows]})
    steps = (("validate", validate), ("map", map_records), ("load", load),
             ("resolve", lambda c: _resolve(c, rows)), ("deliver", deliver))
    return run_steps(ctx, steps, (lambda name, result: on_step(source, name, result)) if on_step else None)


def _resolve(ctx: RunContext, rows: list[Quarantine]) -> dict:
    """Close the replayed rows according to what the replay run did with their payloads."""
    now = datetime.now(timezone.utc)
    with ctx.transaction() as s:
        outcome = dict(s.execute(select(RecordLineage.raw_payload_id, RecordLineage.outcome)
                                 .where(RecordLineage.run_id == ctx.run_id)).all())
        tally: Counter = Counter()
        for q in s.scalars(select(Quarantine).where(Quarantine.id.in_([r.id for r in rows]),
                                                    Quarantine.status == "open")):
            q.status = "replayed" if outcome.get(q.raw_payload_id, "quarantined") == "quarantined" else "resolved"
            q.resolved_run_id, q.resolved_at = ctx.run_id, now
            tally[q.status] += 1
    return {"resolved": tally["resolved"], "still_failing": tally["replayed"]}

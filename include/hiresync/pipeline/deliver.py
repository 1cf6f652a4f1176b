"""Deliver: relay the outbox to each of the source's targets, then publish the run's outcome."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import func, select

from hiresync.errors import HireSyncError
from hiresync.hub.models import Outbox, Run
from hiresync.audit.openlineage import emit_run_lineage
from hiresync.monitor.status import summary_of
from hiresync.delivery.beside import relayed
from hiresync.delivery.outbox import backing_off, relay
from hiresync.pipeline.context import RunContext


def deliver(ctx: RunContext) -> dict:
    """Drains every due row of the source's targets (earlier runs' leftovers too). A target that
    is down or misconfigured stops only its own delivery: the others still go, then the step
    fails naming each target and its cause (its rows wait for the next relay). What a relay
    beside the load delivered counts here too, and a target it had to leave fails the step while
    rows of it still back off."""
    beside = relayed(ctx.staging)
    delivered, failures = {}, []
    for target in ctx.source.targets:
        try:
            delivered[target] = relay(ctx.settings, ctx.keys, target) + beside["delivered"].get(target, 0)
        except HireSyncError as exc:
            failures.append(str(exc))
            continue
        if target in beside["errors"] and backing_off(ctx.settings, target):
            failures.append(beside["errors"][target])
    if failures:
        raise HireSyncError("; ".join(failures))
    return delivered


def publish(ctx: RunContext) -> dict:
    """Close the run: what it delivered, its final status; returns the run summary."""
    with ctx.transaction() as s:
        run = s.get(Run, ctx.run_id)
        run.delivered = s.scalar(select(func.count()).select_from(Outbox).where(
            Outbox.run_id == ctx.run_id, Outbox.status == "sent")) or 0
        run.status, run.finished_at = "success", datetime.now(timezone.utc)
        summary = summary_of(run)
    emit_run_lineage(ctx)  # column lineage + data quality for OpenLineage; best effort, never raises
    ctx.staging.remove()  # the raw payloads are in the hub (encrypted); staging has done its job
    return summary

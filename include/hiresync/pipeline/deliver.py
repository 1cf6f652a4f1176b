"""Deliver: relay the outbox to each of the source's targets, then publish the run's outcome."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import func, select

from hiresync.errors import HireSyncError
from hiresync.hub.models import Outbox, Run
from hiresync.audit.openlineage import emit_run_lineage
from hiresync.monitor.status import summary_of
from hiresync.delivery.beside import beside_when, relayed
from hiresync.delivery.outbox import backing_off, due_rows, relay
from hiresync.pipeline.context import RunContext


def deliver(ctx: RunContext) -> dict:
    """Drains every due row of the source's targets (earlier runs' leftovers too). A target that
    is down or misconfigured stops only its own delivery: the others still go, then the step
    fails naming each target and its cause (its rows wait for the next relay). What a relay
    beside the load delivered counts here too, and a target it had to leave fails the step while
    rows of it still back off.

    Many rows due (what the relay beside the load could not keep up with, a backlog after a target's
    outage) are relayed by a second process beside this one (hiresync.delivery.beside), each
    claiming its own rows. Each passes over a row whose candidate has an earlier row the other one
    holds (a candidate's records go in outbox order), so once the helper has stopped, one more pass
    here sends those."""
    targets = ctx.source.targets
    outcomes = [relayed(ctx.staging)]  # the relay beside the load
    with beside_when(ctx.settings, ctx.keys, targets, due_rows(ctx.settings, targets)) as helper:
        delivered, failures = _relay(ctx, targets)
    if helper is not None:
        outcomes.append(helper.outcome)
        again, failures_after = _relay(ctx, [t for t in targets if t not in failures])
        delivered = {t: delivered.get(t, 0) + n for t, n in again.items()}
        failures |= failures_after
    for target in delivered:
        delivered[target] += sum(o["delivered"].get(target, 0) for o in outcomes)
    for o in outcomes:
        for target, error in o["errors"].items():
            if target in delivered and target not in failures and backing_off(ctx.settings, target):
                failures[target] = error
    if failures:
        raise HireSyncError("; ".join(failures[t] for t in targets if t in failures))
    return delivered


def _relay(ctx: RunContext, targets: list[str]) -> tuple[dict[str, int], dict[str, str]]:
    """Relay each target in turn: (rows delivered per target, the failure of each one that failed)."""
    delivered, failures = {}, {}
    for target in targets:
        try:
            delivered[target] = relay(ctx.settings, ctx.keys, target)
        except HireSyncError as exc:
            failures[target] = str(exc)
    return delivered, failures


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

"""Run every step of one source in this process (what `hiresync sync` does without Airflow)."""

from __future__ import annotations

import time
from typing import Callable

from hiresync.contract.data_docs import build_data_docs, build_data_docs_quietly
from hiresync.contract.drift import ensure_not_frozen
from hiresync.heap import frozen_heap, give_back_free_memory
from hiresync.hub.models import Run
from hiresync.monitor.progress import LogReporter, Reporter, quiet_libraries
from hiresync.pipeline import lock
from hiresync.pipeline.context import RunContext, new_run_id
from hiresync.pipeline.deliver import deliver, publish
from hiresync.pipeline.extract import extract
from hiresync.pipeline.load import load
from hiresync.pipeline.transform import map_records
from hiresync.pipeline.validate import validate
from hiresync.config.settings import Settings

STEPS: tuple[tuple[str, Callable[[RunContext], dict]], ...] = (
    ("extract", extract), ("validate", validate), ("map", map_records), ("load", load), ("deliver", deliver),
)


def run_source(source: str, settings: Settings | None = None, run_id: str | None = None,
               on_step: Callable[[str, dict], None] | None = None, reporter: Reporter | None = None) -> dict:
    ctx = RunContext.open(source, run_id or new_run_id(source), settings)
    if reporter is not None:
        ctx.reporter = reporter
    ctx.keys  # a missing or wrong key stops here, before anything is pulled
    ensure_not_frozen(ctx.settings, source)  # after schema drift, a person decides when to go on
    lock.reap(ctx.settings)  # runs whose process died are marked failed, their staging removed
    lock.acquire(ctx.settings, source, ctx.run_id, lock.holder(airflow=False))  # one sync per source
    try:
        return run_steps(ctx, STEPS, on_step)
    finally:
        lock.release(ctx.settings, source, ctx.run_id)
        build_data_docs_quietly(ctx.settings)


def run_steps(ctx: RunContext, steps, on_step: Callable[[str, dict], None] | None = None) -> dict:
    """Each step in order, the run marked failed with the step's name if one raises; then publish."""
    with frozen_heap():  # what the process imported is never garbage (hiresync/heap.py)
        for name, step in steps:
            try:
                result = timed(ctx, name, step)
            except Exception as exc:
                mark_failed(ctx, name, exc)
                raise
            if on_step:
                on_step(name, result)
        return timed(ctx, "publish", publish)


def timed(ctx: RunContext, name: str, step: Callable[[RunContext], dict]) -> dict:
    """A step between its reporter's start and its one summary line (hiresync.monitor.progress)."""
    started = time.monotonic()
    ctx.reporter.start(name, ctx.source.name)
    result = step(ctx)
    give_back_free_memory()  # its batches are freed: the next step does not start at this one's peak
    ctx.reporter.finish(name, ctx.source.name, result, time.monotonic() - started)
    return result


def mark_failed(ctx: RunContext, step: str, exc: BaseException) -> None:
    """Record why a run stopped. Our own errors carry clean messages; others only their type."""
    from connectors.errors import SourceError
    from hiresync.errors import HireSyncError

    message = str(exc) if isinstance(exc, (HireSyncError, SourceError)) else type(exc).__name__
    # The task log's own line on the cause (Airflow's traceback follows; this one is short and clean).
    from hiresync.monitor.progress import log
    from hiresync.privacy.pii import mask_text

    log.error("%s %s failed: %s", step, ctx.source.name, mask_text(message))
    try:
        with ctx.transaction() as s:
            run = s.get(Run, ctx.run_id)
            if run is not None:
                run.error = f"{step}: {message}"
                if run.status not in ("loaded", "success"):  # loaded data stays loaded; delivery resumes
                    run.status = "failed"
    except Exception:  # noqa: BLE001 - the hub may be what failed; the original error matters more
        pass


def run_step(source: str, run_id: str, step: str) -> dict:
    """One step by name: what each Airflow task calls. The task log gets progress every few seconds
    and one summary line, without the libraries' noise."""
    with quiet_libraries():
        return _run_step(source, run_id, step)


def _run_step(source: str, run_id: str, step: str) -> dict:
    ctx = RunContext.open(source, run_id)
    ctx.reporter = LogReporter()
    if step == "data_docs":  # the DAG's last task, run whatever the other tasks did
        return timed(ctx, step, data_docs_step)
    if step == "extract":
        ensure_not_frozen(ctx.settings, source)
        lock.reap(ctx.settings)
    # Every step renews the run's lease (its steps are separate processes); a CLI sync holding the
    # source stops the DAG run here, before it touches anything.
    lock.acquire(ctx.settings, source, run_id, lock.holder(airflow=True))
    fn = dict(STEPS + (("publish", publish),))[step]
    try:
        with frozen_heap():  # what the task's process imported is never garbage (hiresync/heap.py)
            result = timed(ctx, step, fn)
    except Exception as exc:
        mark_failed(ctx, step, exc)
        lock.release(ctx.settings, source, run_id)
        raise
    if step == "publish":
        lock.release(ctx.settings, source, run_id)
    return result


def data_docs_step(ctx: RunContext) -> dict:
    """Rebuild Data Docs, then fail if the run did not succeed: as the DAG's only leaf task, this
    task's state is what Airflow reports for the whole DAG run."""
    from hiresync.errors import HireSyncError

    index = build_data_docs(ctx.settings)
    with ctx.transaction() as s:
        run = s.get(Run, ctx.run_id)
        status, error = (run.status, run.error) if run else ("not started", None)
    if status != "success":
        raise HireSyncError(f"run {ctx.run_id} ended {status}: {error or 'see the failed task'}; Data Docs: {index}")
    return {"data_docs": str(index)}

"""Validate: the raw suite (hiresync.contract.raw_suite) over the run's staged payloads, read one
micro-batch at a time and judged by GX in windows of several batches (contract.gx.FrameWindow);
failing rows and their field + rule go to staging for the load step to quarantine. Rows are
numbered across the whole run (batch offset + position).

Payloads the hub already loaded byte for byte under the same mapping (hiresync.load.known) are
set aside first, staged as `known` batches beside the raw ones: map skips them and load accounts
them as unchanged. A run that pulled nothing new therefore never imports Great Expectations. In a
large run a second process prepares two of every three batches for the suite (opens them, sets
the known ones aside, builds their columns: pipeline/validate_beside.py); the step judges them all.
"""

from __future__ import annotations

from hiresync.contract.gx import FrameWindow, RunningSummary
from hiresync.contract.raw_suite import ROW, checks_for
from hiresync.ingest.bounds import INGEST_RULES
from hiresync.load.known import mapping_unchanged
from hiresync.pipeline.context import RunContext
from hiresync.pipeline.validate_beside import beside_when, known_in, prepare_batch


def validate(ctx: RunContext) -> dict:
    failures: dict[int, list[dict]] = {}
    summaries = RunningSummary()
    window = FrameWindow(lambda columns: summaries.add(_validate_columns(ctx, columns, failures)))
    offset = known_total = 0
    manifest = ctx.staging.read_json("manifest")
    skip_known = not manifest.get("replay")  # a replay re-judges on purpose
    if skip_known:
        with ctx.transaction() as s:
            skip_known = mapping_unchanged(s, ctx.mapping)
    known_of = known_in(ctx.settings.hub_url, ctx.source.name, ctx.mapping) if skip_known else None
    pulled = manifest.get("pulled")
    with ctx.staging.writer("known") as known_out, beside_when(ctx.settings, ctx.staging, ctx.keys, ctx.source.name,
                                                               ctx.mapping, skip_known, pulled or 0) as helper:
        for index, line in ctx.staging.sealed_batches("raw"):
            prepared = helper.result(index) if helper is not None else None
            if prepared is None:  # the step's own batch, or the helper stopped early
                prepared = prepare_batch(ctx.mapping, ctx.staging.open_batch("raw", index, line), offset, known_of)
            known_out.write(prepared.known)  # one known batch per raw batch, empty or not: map and load zip them
            known_total += len(prepared.known)
            failures.update(prepared.failures)
            window.add(prepared.columns)
            offset += prepared.rows
            ctx.progress(offset, pulled, batches=index + 1)
    window.flush()
    summary = summaries.total or {"rows": 0, "failed_rows": 0, "expectations": []}
    summary["known"] = known_total
    summary["failed_at_ingest"] = sum(1 for v in failures.values() if v[0]["rule"] in INGEST_RULES)
    ctx.staging.write_json("validation", {"failures": {str(k): v for k, v in failures.items()}, "summary": summary})
    return {"rows": offset, "known": known_total, "failed_rows": summary["failed_rows"]}


def _validate_columns(ctx: RunContext, columns: dict[str, list], failures: dict[int, list[dict]]) -> dict:
    """One GX validation of a window of raw-suite rows; failing rows join `failures`."""
    # Great Expectations and pandas are imported only when there is something to validate: a run
    # that pulled nothing new never pays their import (seconds per Airflow task).
    import pandas as pd

    from hiresync.contract.gx import validate_frame

    outcome = validate_frame(pd.DataFrame(columns), ROW, checks_for(ctx.mapping), suite_name=f"{ctx.source.name}.raw")
    before = len(failures)
    for f in outcome.failures:
        failures.setdefault(int(f.key), []).append({"field": f.field, "rule": f.rule})
    return {"rows": len(columns[ROW]), "failed_rows": len(failures) - before,
            "expectations": outcome.expectation_results, "statistics": outcome.statistics}

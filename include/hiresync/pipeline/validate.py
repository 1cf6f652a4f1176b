"""Validate: the raw suite (hiresync.contract.raw_suite) over the run's staged payloads, one
micro-batch at a time; failing rows and their field + rule go to staging for the load step to
quarantine. Rows are numbered across the whole run (batch offset + position)."""

from __future__ import annotations

from hiresync.contract.gx import merge_summaries
from hiresync.contract.raw_suite import ROW, checks_for, frame_rows
from hiresync.pipeline.context import RunContext


def validate(ctx: RunContext) -> dict:
    failures: dict[int, list[dict]] = {}
    summary = None
    offset = 0
    for batch in ctx.staging.read_batches("raw"):
        part = _validate_batch(ctx, [r["payload"] for r in batch], offset, failures)
        summary = merge_summaries(summary, part)
        offset += len(batch)
    summary = summary or {"rows": 0, "failed_rows": 0, "expectations": []}
    ctx.staging.write_json("validation", {"failures": {str(k): v for k, v in failures.items()}, "summary": summary})
    return {"rows": summary["rows"], "failed_rows": summary["failed_rows"]}


def _validate_batch(ctx: RunContext, payloads: list[dict], offset: int, failures: dict[int, list[dict]]) -> dict:
    # Great Expectations and pandas are imported only when there is something to validate: a run
    # that pulled nothing never pays their import (seconds per Airflow task).
    import pandas as pd

    from hiresync.contract.gx import validate_frame

    frame = pd.DataFrame(frame_rows(payloads, ctx.mapping, offset))
    outcome = validate_frame(frame, ROW, checks_for(ctx.mapping), suite_name=f"{ctx.source.name}.raw")
    before = len(failures)
    for f in outcome.failures:
        failures.setdefault(int(f.key), []).append({"field": f.field, "rule": f.rule})
    return {"rows": len(payloads), "failed_rows": len(failures) - before,
            "expectations": outcome.expectation_results, "statistics": outcome.statistics}

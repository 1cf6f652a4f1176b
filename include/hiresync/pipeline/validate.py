"""Validate: the raw suite (hiresync.contract.raw_suite) over the run's staged payloads; failing rows
and their field + rule go to staging for the load step to quarantine."""

from __future__ import annotations

from hiresync.contract.raw_suite import ROW, checks_for, frame_rows
from hiresync.pipeline.context import RunContext


def validate(ctx: RunContext) -> dict:
    import pandas as pd

    from hiresync.contract.gx import validate_frame

    payloads = [r["payload"] for r in ctx.staging.read_records("raw")]
    frame = pd.DataFrame(frame_rows(payloads, ctx.mapping))
    failures: dict[int, list[dict]] = {}
    summary = {"rows": len(payloads), "failed_rows": 0, "expectations": []}
    if payloads:
        outcome = validate_frame(frame, ROW, checks_for(ctx.mapping), suite_name=f"{ctx.source.name}.raw")
        for f in outcome.failures:
            failures.setdefault(int(f.key), []).append({"field": f.field, "rule": f.rule})
        summary.update(failed_rows=len(failures), expectations=outcome.expectation_results,
                       statistics=outcome.statistics)
    ctx.staging.write_json("validation", {"failures": {str(k): v for k, v in failures.items()}, "summary": summary})
    return {"rows": summary["rows"], "failed_rows": summary["failed_rows"]}

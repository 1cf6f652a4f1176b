"""Validate: the raw suite (hiresync.contract.raw_suite) over the run's staged payloads, read one
micro-batch at a time and judged by GX in windows of several batches (contract.gx.FrameWindow);
failing rows and their field + rule go to staging for the load step to quarantine. Rows are
numbered across the whole run (batch offset + position).

Payloads the hub already loaded byte for byte under the same mapping (hiresync.load.known) are
set aside first, staged as `known` batches beside the raw ones: map skips them and load accounts
them as unchanged. A run that pulled nothing new therefore never imports Great Expectations.
"""

from __future__ import annotations

from hiresync.contract.gx import FrameWindow, RunningSummary
from hiresync.contract.raw_suite import ROW, checks_for, frame_columns
from hiresync.ingest.bounds import INGEST_RULES
from hiresync.load.known import known_payloads, mapping_unchanged
from hiresync.pipeline.context import RunContext


def validate(ctx: RunContext) -> dict:
    failures: dict[int, list[dict]] = {}
    summaries = RunningSummary()
    window = FrameWindow(lambda columns: summaries.add(_validate_columns(ctx, columns, failures)))
    offset = known_total = 0
    skip_known = not ctx.staging.read_json("manifest").get("replay")  # a replay re-judges on purpose
    if skip_known:
        with ctx.transaction() as s:
            skip_known = mapping_unchanged(s, ctx.mapping)
    with ctx.staging.writer("known") as known_out:
        for batch in ctx.staging.read_batches("raw"):
            known = _known_rows(ctx, batch, offset) if skip_known else []
            known_out.write(known)  # one known batch per raw batch, empty or not: map and load zip them
            known_total += len(known)
            skip = {k["row"] for k in known}
            for row, r in enumerate(batch, start=offset):
                if row not in skip and r.get("defect"):  # found while pulling (hiresync.ingest.bounds)
                    failures[row] = [r["defect"]]
                    skip.add(row)
            todo = [(row, r["payload"]) for row, r in enumerate(batch, start=offset) if row not in skip]
            window.add(frame_columns([p for _, p in todo], ctx.mapping, [row for row, _ in todo]))
            offset += len(batch)
    window.flush()
    summary = summaries.total or {"rows": 0, "failed_rows": 0, "expectations": []}
    summary["known"] = known_total
    summary["failed_at_ingest"] = sum(1 for v in failures.values() if v[0]["rule"] in INGEST_RULES)
    ctx.staging.write_json("validation", {"failures": {str(k): v for k, v in failures.items()}, "summary": summary})
    return {"rows": offset, "known": known_total, "failed_rows": summary["failed_rows"]}


def _known_rows(ctx: RunContext, batch: list[dict], offset: int) -> list[dict]:
    keyed = [(ctx.mapping.key_of(r["payload"]) or "", r["hash"]) for r in batch]
    with ctx.transaction() as s:
        known = known_payloads(s, ctx.source.name, ctx.mapping, keyed)
    return [{"row": row, "hash": h} for row, (_, h) in enumerate(keyed, start=offset) if h in known]


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

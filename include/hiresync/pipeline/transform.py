"""Map: every payload that passed validation becomes a canonical record, or field-level problems.

Batch by batch, as staged (payloads the hub already holds, staged as `known` by validate, are
skipped; in a large run a second process maps two of every three batches: pipeline/map_beside.py):
each mapped batch is staged as the mapped batch of the same position, so the load step
reads raw and mapped batches side by side, and goes through the canonical GX suite
(hiresync.contract.canonical_suite) in windows of several batches. Rows the suite fails join the
mapping problems in `map_problems.json`, which the load step quarantines. Last, the whole run is
judged for schema drift: a drifting run freezes the source and stops here, before load, so nothing
of it is loaded and the watermark stays.
"""

from __future__ import annotations

from datetime import datetime, timezone

from hiresync.contract import canonical_suite, drift
from hiresync.contract.gx import FrameWindow, RunningSummary
from hiresync.pipeline.context import RunContext
from hiresync.pipeline.map_beside import beside_when, mapped_batch, staged_rows


def map_records(ctx: RunContext) -> dict:
    mapping = ctx.mapping
    validation = ctx.staging.read_json("validation")
    failed = {int(k) for k in validation["failures"]}
    problems: dict[int, list[dict]] = {}
    canonical_failed: set[int] = set()
    summaries = RunningSummary()

    # The FUTURE check's "now" is this step's start: every record was pulled before it, and one time
    # for the whole run keeps the suite the same from window to window (GX builds it once).
    now = datetime.now(timezone.utc)

    def judge(columns: dict[str, list]) -> None:
        found, part = canonical_suite.validate_columns(columns, mapping, suite_name=f"{ctx.source.name}.canonical",
                                                       now=now)
        problems.update(found)
        canonical_failed.update(found)
        summaries.add(part)

    window = FrameWindow(judge)
    presence = drift.PresenceTracker(mapping)
    rows = mapped_total = helped = 0
    manifest = ctx.staging.read_json("manifest")
    # A large run: a second process maps two of every three batches (hiresync.pipeline.map_beside).
    with ctx.staging.writer("mapped") as out, beside_when(ctx.settings, ctx.staging, ctx.keys, mapping, failed,
                                                          manifest.get("pulled") or 0) as helper:
        for index, (batch, known) in enumerate(zip(ctx.staging.read_batches("raw"), ctx.staging.read_batches("known"))):
            for raw in batch:
                presence.see(raw["payload"])
            # Staged now, judged with the window: a row the canonical suite fails is in map_problems,
            # which the load step reads before the mapped record (and quarantines it). One mapped
            # batch per raw batch, empty or not: the load zips them.
            done = helper.result(index) if helper is not None else None
            if done is None:  # known rows: loaded before, byte for byte (validate)
                mapped, found, digests = mapped_batch(mapping, batch, rows, failed | {k["row"] for k in known})
                out.write(staged_rows(mapped, digests))
                count, columns = len(mapped), canonical_suite.frame_columns(mapped, mapping, digests)
            else:  # mapped, sealed and put in columns by the helper
                helped += 1
                out.write_sealed(done.line, done.mapped)
                count, found, columns = done.mapped, done.problems, done.columns
            problems.update(found)
            rows += len(batch)
            mapped_total += count
            window.add(columns)
    window.flush()
    staged = mapped_total - len(canonical_failed)
    canonical_summary = summaries.total

    summary = validation["summary"]
    summary["mapping"] = {"rows": rows - len(failed), "failed_rows": len(problems) - len(canonical_failed)}
    summary["canonical"] = canonical_summary or {"rows": 0, "failed_rows": 0, "expectations": []}
    if not manifest.get("replay"):  # a replay batch is all former failures by construction
        all_problems = {int(k): v for k, v in validation["failures"].items()} | problems
        verdict = drift.judge(ctx.source, rows, all_problems, presence.absent() if rows else [], mapping)
        summary["drift"] = verdict.as_dict()
        if verdict.drifted:
            drift.freeze(ctx.settings, ctx.source.name, ctx.run_id, verdict.reason, summary)
            raise drift.SchemaDrift(f"schema drift, source {ctx.source.name!r} frozen, nothing loaded: {verdict.reason}")

    ctx.staging.write_json("map_problems", {str(k): v for k, v in problems.items()})
    ctx.staging.write_json("validation", validation)  # now with the mapping and canonical summaries
    return {"mapped": staged, "map_problems": len(problems), "canonical_failed": len(canonical_failed),
            "mapping_version": mapping.version, **({"helper_batches": helped} if helped else {})}

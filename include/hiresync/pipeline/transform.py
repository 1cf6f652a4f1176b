"""Map: every payload that passed validation becomes a canonical record, or field-level problems.

Batch by batch, as staged (payloads the hub already holds, staged as `known` by validate, are
skipped): each mapped batch goes through the canonical GX suite
(hiresync.contract.canonical_suite) and is staged as the mapped batch of the same position, so
the load step reads raw and mapped batches side by side. Rows the suite fails join the mapping
problems in `map_problems.json`, which the load step quarantines. Last, the whole run is judged
for schema drift: a drifting run freezes the source and stops here, before load, so nothing of it
is loaded and the watermark stays.
"""

from __future__ import annotations

from hiresync.contract import canonical_suite, drift
from hiresync.contract.gx import merge_summaries
from hiresync.pipeline.context import RunContext


def map_records(ctx: RunContext) -> dict:
    mapping = ctx.mapping
    validation = ctx.staging.read_json("validation")
    failed = {int(k) for k in validation["failures"]}
    problems: dict[int, list[dict]] = {}
    canonical_failed: set[int] = set()
    presence = drift.PresenceTracker(mapping)
    canonical_summary = None
    rows = staged = 0
    with ctx.staging.writer("mapped") as out:
        for batch, known in zip(ctx.staging.read_batches("raw"), ctx.staging.read_batches("known")):
            skip = failed | {k["row"] for k in known}  # known: loaded before, byte for byte (validate)
            mapped: list[tuple[int, dict]] = []
            for row, raw in enumerate(batch, start=rows):
                presence.see(raw["payload"])
                if row in skip:
                    continue
                record, errs = mapping.map(raw["payload"])
                if errs:
                    problems[row] = [e.as_dict() for e in errs]
                else:
                    mapped.append((row, record))
            rows += len(batch)
            found, part = canonical_suite.validate_records(mapped, mapping, suite_name=f"{ctx.source.name}.canonical")
            problems.update(found)
            canonical_failed.update(found)
            canonical_summary = merge_summaries(canonical_summary, part)
            kept = [{"row": row, "record": rec} for row, rec in mapped if row not in found]
            out.write(kept)  # one mapped batch per raw batch, empty or not: load zips them
            staged += len(kept)

    summary = validation["summary"]
    summary["mapping"] = {"rows": rows - len(failed), "failed_rows": len(problems) - len(canonical_failed)}
    summary["canonical"] = canonical_summary or {"rows": 0, "failed_rows": 0, "expectations": []}
    manifest = ctx.staging.read_json("manifest")
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
            "mapping_version": mapping.version}

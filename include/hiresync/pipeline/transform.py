"""Map: every payload that passed validation becomes a canonical record, or field-level problems.

The mapped batch then goes through the canonical GX suite (hiresync.contract.canonical_suite); rows it
fails join the mapping problems in `map_problems.json`, which the load step quarantines. Last,
the whole batch is judged for schema drift: a drifting batch freezes the source and stops the
run here, before load, so nothing of it is loaded and the watermark stays.
"""

from __future__ import annotations

from hiresync.contract import canonical_suite
from hiresync.contract import drift
from hiresync.pipeline.context import RunContext


def map_records(ctx: RunContext) -> dict:
    mapping = ctx.mapping
    validation = ctx.staging.read_json("validation")
    failed = {int(k) for k in validation["failures"]}
    problems: dict[int, list[dict]] = {}
    mapped: list[tuple[int, dict]] = []
    presence = drift.PresenceTracker(mapping)
    rows = 0
    for row, raw in enumerate(ctx.staging.read_records("raw")):
        rows += 1
        presence.see(raw["payload"])
        if row in failed:
            continue
        record, errs = mapping.map(raw["payload"])
        if errs:
            problems[row] = [e.as_dict() for e in errs]
        else:
            mapped.append((row, record))

    canonical_problems, canonical_summary = canonical_suite.validate_records(
        mapped, mapping, suite_name=f"{ctx.source.name}.canonical")
    problems.update(canonical_problems)

    summary = validation["summary"]
    summary["mapping"] = {"rows": rows - len(failed), "failed_rows": len(problems) - len(canonical_problems)}
    summary["canonical"] = canonical_summary
    manifest = ctx.staging.read_json("manifest")
    if not manifest.get("replay"):  # a replay batch is all former failures by construction
        all_problems = {int(k): v for k, v in validation["failures"].items()} | problems
        verdict = drift.judge(ctx.source, rows, all_problems, presence.absent() if rows else [], mapping)
        summary["drift"] = verdict.as_dict()
        if verdict.drifted:
            drift.freeze(ctx.settings, ctx.source.name, ctx.run_id, verdict.reason, summary)
            raise drift.SchemaDrift(f"schema drift, source {ctx.source.name!r} frozen, nothing loaded: {verdict.reason}")

    n = ctx.staging.write_records("mapped", ({"row": row, "record": rec} for row, rec in mapped
                                             if row not in canonical_problems))
    ctx.staging.write_json("map_problems", {str(k): v for k, v in problems.items()})
    ctx.staging.write_json("validation", validation)  # now with the mapping and canonical summaries
    return {"mapped": n, "map_problems": len(problems), "canonical_failed": len(canonical_problems),
            "mapping_version": mapping.version}

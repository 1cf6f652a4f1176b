"""Map: every payload that passed validation becomes a canonical record, or field-level problems."""

from __future__ import annotations

from hiresync.pipeline.context import RunContext


def map_records(ctx: RunContext) -> dict:
    mapping = ctx.mapping
    failed = {int(k) for k in ctx.staging.read_json("validation")["failures"]}
    problems: dict[str, list[dict]] = {}

    def mapped():
        for row, raw in enumerate(ctx.staging.read_records("raw")):
            if row in failed:
                continue
            record, errs = mapping.map(raw["payload"])
            if errs:
                problems[str(row)] = [e.as_dict() for e in errs]
                continue
            yield {"row": row, "record": record}

    n = ctx.staging.write_records("mapped", mapped())
    ctx.staging.write_json("map_problems", problems)
    return {"mapped": n, "map_problems": len(problems), "mapping_version": mapping.version}

"""The Great Expectations suite for canonical records: what a mapped batch must satisfy before load.

The raw suite (contract/raw_suite.py) judges what the vendor sent; this one judges what the mapping
made of it, so a mapping mistake (a status map to a value that is not canonical, a score scale
that overshoots, a required canonical field mapped as optional) is caught before it reaches the
hub. It runs over the whole mapped batch in one GX validation, keyed by the staging row number.
"""

from __future__ import annotations

from datetime import datetime, timezone

from hiresync.mapping.spec import MUST_MAP, PII_KIND, STATUSES, MappingSpec, content_hash
from hiresync.privacy.pii import mask_value

ROW = "__row"
KEY = "record.key"
# The key of each record that is the newest version of its result in the batch: what load keeps.
NEWEST_KEY = "record.key.newest"
DIM_MIN, DIM_MAX = "dimensions.score.min", "dimensions.score.max"
# A vendor clock a few minutes ahead of ours is not a defect.
FUTURE_TOLERANCE_SECONDS = 300


def canonical_value(record: dict, field: str):
    if field == KEY:
        return record["vendor_result_id"]
    if field.startswith("candidate."):
        return record["candidate"].get(field.removeprefix("candidate."))
    return record["result"].get(field)


def frame_rows(mapped: list[tuple[int, dict]], mapping: MappingSpec) -> list[dict]:
    """One row per mapped record: the canonical values the checks look at (epoch seconds for times)."""
    fields = _required(mapping) | {"candidate.national_id", "candidate.mobile", "overall_score", "status"}
    newest = _newest_rows(mapped)
    rows = []
    for row, rec in mapped:
        out = {ROW: row, KEY: rec["vendor_result_id"], NEWEST_KEY: newest.get(row)}
        for f in fields:
            out[f] = canonical_value(rec, f)
        for f in ("started_at", "completed_at"):
            value = rec["result"].get(f)
            out[f"{f}.epoch"] = datetime.fromisoformat(value).timestamp() if value else None
        scores = [d.get("score") for d in rec["dimensions"] if d.get("score") is not None]
        out[DIM_MIN], out[DIM_MAX] = (min(scores), max(scores)) if scores else (None, None)
        rows.append(out)
    return rows


def checks_for(mapping: MappingSpec, now: datetime | None = None) -> list:
    from hiresync.contract.gx import Check

    now = now or datetime.now(timezone.utc)
    checks = [Check(KEY, "NOT_NULL", "ExpectColumnValuesToNotBeNull", {"column": KEY}),
              Check(KEY, "DUPLICATE_KEY", "ExpectColumnValuesToBeUnique", {"column": NEWEST_KEY})]
    checks += [Check(f, "NOT_NULL", "ExpectColumnValuesToNotBeNull", {"column": f}) for f in sorted(_required(mapping))]
    checks += [
        Check("overall_score", "RANGE", "ExpectColumnValuesToBeBetween",
              {"column": "overall_score", "min_value": 0, "max_value": 100}),
        Check("dimensions.score", "RANGE", "ExpectColumnValuesToBeBetween", {"column": DIM_MIN, "min_value": 0}),
        Check("dimensions.score", "RANGE", "ExpectColumnValuesToBeBetween", {"column": DIM_MAX, "max_value": 100}),
        Check("status", "STATUS_SET", "ExpectColumnValuesToBeInSet", {"column": "status", "value_set": list(STATUSES)}),
        Check("candidate.national_id", "ID_CHECKSUM", "ExpectColumnValuesToBeValidResidentId",
              {"column": "candidate.national_id"}),
        Check("candidate.mobile", "MOBILE_FORMAT", "ExpectColumnValuesToBeValidCnMobile", {"column": "candidate.mobile"}),
        Check("completed_at", "ORDER", "ExpectColumnPairValuesAToBeGreaterThanB",
              {"column_A": "completed_at.epoch", "column_B": "started_at.epoch", "or_equal": True}),
        Check("completed_at", "FUTURE", "ExpectColumnValuesToBeBetween",
              {"column": "completed_at.epoch", "max_value": now.timestamp() + FUTURE_TOLERANCE_SECONDS}),
    ]
    return checks


def validate_records(mapped: list[tuple[int, dict]], mapping: MappingSpec, suite_name: str,
                     now: datetime | None = None) -> tuple[dict[int, list[dict]], dict]:
    """(row -> problems [{field, rule, value (masked)}], summary without values) for a mapped batch."""
    summary: dict = {"rows": len(mapped), "failed_rows": 0, "expectations": []}
    if not mapped:
        return {}, summary
    import pandas as pd

    from hiresync.contract.gx import validate_frame

    # Object dtype keeps None as None (GX treats it as missing) and leaves numbers unconverted.
    frame = pd.DataFrame(frame_rows(mapped, mapping))
    outcome = validate_frame(frame, ROW, checks_for(mapping, now), suite_name=suite_name)
    records = dict(mapped)
    problems: dict[int, list[dict]] = {}
    for f in outcome.failures:
        row = int(f.key)
        value = canonical_value(records[row], f.field) if f.field != "dimensions.score" else None
        problem = {"field": f.field, "rule": f.rule, "value": mask_value(PII_KIND.get(f.field), value)}
        if problem not in problems.setdefault(row, []):
            problems[row].append(problem)
    summary.update(failed_rows=len(problems), expectations=outcome.expectation_results,
                   statistics=outcome.statistics)
    return problems, summary


def _required(mapping: MappingSpec) -> set[str]:
    return set(MUST_MAP) | {f.name for f in mapping.fields if f.required}


def _newest_rows(mapped: list[tuple[int, dict]]) -> dict[int, str]:
    """row -> "key@version" for the rows load would keep (newest source_updated_at per key).

    Two different payloads claiming the same newest version of one result are ambiguous: both get
    the same value and the uniqueness check flags them. An exact repeat is harmless and is skipped.
    """
    newest: dict[str, str] = {}
    for _, rec in mapped:
        key, when = rec["vendor_result_id"], rec["result"].get("source_updated_at") or ""
        if key is not None and when > newest.get(key, ""):
            newest[key] = when
    out: dict[int, str] = {}
    seen: set[tuple[str, str]] = set()
    for row, rec in mapped:
        key = rec["vendor_result_id"]
        if key is None or (rec["result"].get("source_updated_at") or "") != newest.get(key):
            continue
        digest = content_hash(rec)
        if (key, digest) in seen:
            continue
        seen.add((key, digest))
        out[row] = f"{key}@{newest[key]}"
    return out

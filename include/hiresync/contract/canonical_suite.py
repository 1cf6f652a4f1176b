"""The Great Expectations suite for canonical records: what a mapped batch must satisfy before load.

The raw suite (contract/raw_suite.py) judges what the vendor sent; this one judges what the mapping
made of it, so a mapping mistake (a status map to a value that is not canonical, a score scale
that overshoots, a required canonical field mapped as optional) is caught before it reaches the
hub. It runs over the mapped records of a window of micro-batches (contract.gx.FrameWindow) in one GX
validation, keyed by the staging row number.
"""

from __future__ import annotations

from datetime import datetime, timezone

from hiresync.mapping.spec import MUST_MAP, PII_KIND, STATUSES, MappingSpec, content_hash
from hiresync.privacy.pii import mask_value

ROW = "__row"
KEY = "record.key"
# The key of each record that is the newest version of its result in the window: what load keeps.
NEWEST_KEY = "record.key.newest"
DIM_MIN, DIM_MAX = "dimensions.score.min", "dimensions.score.max"
_WHEN, _DIGEST = "record.source_updated_at", "record.content_hash"  # for NEWEST_KEY, not checked
# A vendor clock a few minutes ahead of ours is not a defect.
FUTURE_TOLERANCE_SECONDS = 300


def canonical_value(record: dict, field: str):
    if field == KEY:
        return record["vendor_result_id"]
    if field.startswith("candidate."):
        return record["candidate"].get(field.removeprefix("candidate."))
    return record["result"].get(field)


def frame_columns(mapped: list[tuple[int, dict]], mapping: MappingSpec,
                  digests: list[str] | None = None) -> dict[str, list]:
    """The frame of mapped records as columns (name -> one value per record): the canonical values
    the checks look at (epoch seconds for times), and what NEWEST_KEY is derived from when the window
    is judged (`validate_columns`). `digests`: the records' content hashes, if the caller has them."""
    records = [rec for _, rec in mapped]
    results = [rec["result"] for rec in records]
    columns = {ROW: [row for row, _ in mapped], KEY: [rec["vendor_result_id"] for rec in records],
               _WHEN: [r.get("source_updated_at") or "" for r in results],
               _DIGEST: digests if digests is not None else [content_hash(rec) for rec in records]}
    fields = _required(mapping) | {"candidate.national_id", "candidate.mobile", "overall_score", "status",
                                   "started_at", "completed_at"}
    for f in sorted(fields):
        columns[f] = [canonical_value(rec, f) for rec in records]
    for f in ("started_at", "completed_at"):
        columns[f"{f}.epoch"] = [datetime.fromisoformat(v).timestamp() if (v := r.get(f)) else None for r in results]
    lows, highs = [], []
    for rec in records:
        scores = [d["score"] for d in rec["dimensions"] if d.get("score") is not None]
        lows.append(min(scores) if scores else None)
        highs.append(max(scores) if scores else None)
    columns[DIM_MIN], columns[DIM_MAX] = lows, highs
    return columns


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
    return validate_columns(frame_columns(mapped, mapping) if mapped else {}, mapping, suite_name, now)


def validate_columns(columns: dict[str, list], mapping: MappingSpec, suite_name: str,
                     now: datetime | None = None) -> tuple[dict[int, list[dict]], dict]:
    """The same for the frame columns of a window of batches (contract.gx.FrameWindow): one GX validation."""
    numbers = columns.get(ROW, [])
    summary: dict = {"rows": len(numbers), "failed_rows": 0, "expectations": []}
    if not numbers:
        return {}, summary
    import pandas as pd

    from hiresync.contract.gx import validate_frame

    columns = {**columns, NEWEST_KEY: _newest_keys(columns[KEY], columns[_WHEN], columns[_DIGEST])}
    # Object dtype keeps None as None (GX treats it as missing) and leaves numbers unconverted.
    frame = pd.DataFrame({name: values for name, values in columns.items() if name not in (_WHEN, _DIGEST)})
    outcome = validate_frame(frame, ROW, checks_for(mapping, now), suite_name=suite_name)
    position = {row: i for i, row in enumerate(numbers)}
    problems: dict[int, list[dict]] = {}
    for f in outcome.failures:
        row = int(f.key)
        value = columns[f.field][position[row]] if f.field in columns else None  # dimensions.score: no value
        problem = {"field": f.field, "rule": f.rule, "value": mask_value(PII_KIND.get(f.field), value)}
        if problem not in problems.setdefault(row, []):
            problems[row].append(problem)
    summary.update(failed_rows=len(problems), expectations=outcome.expectation_results,
                   statistics=outcome.statistics)
    return problems, summary


def _required(mapping: MappingSpec) -> set[str]:
    return set(MUST_MAP) | {f.name for f in mapping.fields if f.required}


def _newest_keys(keys: list, whens: list[str], digests: list[str]) -> list[str | None]:
    """Per row, "key@version" for the rows load would keep (the newest source_updated_at per key),
    None for the others.

    Two different payloads claiming the same newest version of one result are ambiguous: both get
    the same value and the uniqueness check flags them. An exact repeat is harmless and is skipped.
    """
    newest: dict[str, str] = {}
    for key, when in zip(keys, whens):
        if key is not None and when > newest.get(key, ""):
            newest[key] = when
    out: list[str | None] = []
    seen: set[tuple[str, str]] = set()
    for key, when, digest in zip(keys, whens, digests):
        if key is None or when != newest.get(key) or (key, digest) in seen:
            out.append(None)
            continue
        seen.add((key, digest))
        out.append(f"{key}@{when}")
    return out

"""The raw suite: one Great Expectations suite over a batch of raw payloads, derived from the mapping.

The frame holds, per pulled payload, the raw value of every mapped field (what the vendor sent,
before normalisation) plus a few derived columns (score on 0-100, parsed UTC times). Rows are
keyed by their line number in staging, not by vendor id: a change feed can carry two versions
of one result, and only the broken one must be quarantined.
"""

from __future__ import annotations

import math

from hiresync.mapping.spec import FieldError, MappingSpec, normalise_score, parse_datetime
from hiresync.privacy.identifiers import national_id_problem

ROW = "__row"
KEY = "record.key"
RECORD = "record"
IS_OBJECT = "record.is_object"
ID_RULES = ("ID_FORMAT", "ID_BIRTH_DATE", "ID_CHECKSUM")

# Derived columns per field: `.present` (True when a value is there, or the row is not an object at all, which
# has its own reason; else None, for the NOT_NULL check), `.finite` (not NaN/Infinity), `.id_rule` (which resident-ID rule fails). The
# suite reports one reason code per defect, the same one the mapper gives (mapping/spec.py).


def frame_rows(payloads: list, mapping: MappingSpec, numbers: list[int] | None = None) -> list[dict]:
    """One frame row per payload, numbered by `numbers` (their rows in the run) or from 0."""
    rows = []
    for i, payload in zip(numbers if numbers is not None else range(len(payloads)), payloads):
        is_object = isinstance(payload, dict)
        row = {ROW: i, IS_OBJECT: is_object, KEY: mapping.key_of(payload) if is_object else None}
        row[f"{KEY}.present"] = True if row[KEY] is not None or not is_object else None
        for spec in mapping.fields:
            value = spec.extract(payload) if is_object else None
            finite = not (isinstance(value, float) and not math.isfinite(value))
            if not finite:
                value = None  # NAN is its reason; no other check sees it
            row[f"{spec.name}.present"] = True if value is not None or not finite or not is_object else None
            row[f"{spec.name}.finite"] = finite
            if spec.type == "score":
                row[spec.name] = _score_or_nan(value, spec.scale_of(payload) if is_object else None)
            else:
                row[spec.name] = None if value is None else (value if spec.type == "number" else str(value))
            if spec.type == "national_id":
                row[f"{spec.name}.id_rule"] = None if value is None else national_id_problem(str(value))
            if spec.type == "datetime":
                parsed = _utc_or_none(value, spec)
                row[f"{spec.name}.utc"] = parsed
                row[f"{spec.name}.parses"] = value is None or parsed is not None
        rows.append(row)
    return rows


def checks_for(mapping: MappingSpec) -> list:
    from hiresync.contract.gx import Check  # GX is imported only where a suite runs

    checks = [Check(RECORD, "NOT_AN_OBJECT", "ExpectColumnValuesToBeInSet", {"column": IS_OBJECT, "value_set": [True]}),
              Check(KEY, "NOT_NULL", "ExpectColumnValuesToNotBeNull", {"column": f"{KEY}.present"})]
    names = {spec.name for spec in mapping.fields}
    for spec in mapping.fields:
        if spec.path is None:
            continue
        col = spec.name
        checks.append(Check(col, "NAN", "ExpectColumnValuesToBeInSet", {"column": f"{col}.finite", "value_set": [True]}))
        if spec.required:
            checks.append(Check(col, "NOT_NULL", "ExpectColumnValuesToNotBeNull", {"column": f"{col}.present"}))
        if spec.type == "national_id":
            checks += [Check(col, rule, "ExpectColumnValuesToNotBeInSet", {"column": f"{col}.id_rule", "value_set": [rule]})
                       for rule in ID_RULES]
        elif spec.type == "mobile":
            checks.append(Check(col, "MOBILE_FORMAT", "ExpectColumnValuesToBeValidCnMobile", {"column": col}))
        elif spec.type == "email":
            checks.append(Check(col, "EMAIL_FORMAT", "ExpectColumnValuesToMatchRegex",
                                {"column": col, "regex": r"^\s*[^@\s]+@[^@\s]+\.[^@\s]+\s*$"}))
        elif spec.type == "score":
            checks.append(Check(col, "RANGE", "ExpectColumnValuesToBeBetween",
                                {"column": col, "min_value": 0, "max_value": 100}))
        elif spec.type == "datetime":
            checks.append(Check(col, "DATETIME", "ExpectColumnValuesToBeInSet",
                                {"column": f"{col}.parses", "value_set": [True]}))
    if {"started_at", "completed_at"} <= names:
        checks.append(Check("completed_at", "ORDER", "ExpectColumnPairValuesAToBeGreaterThanB",
                            {"column_A": "completed_at.utc", "column_B": "started_at.utc", "or_equal": True,
                             "ignore_row_if": "either_value_is_missing"}))
    return checks


def _score_or_nan(value, scale) -> float:
    if value is None:
        return math.nan
    try:
        # A value the vendor cannot have meant (130 of 100) must reach the RANGE check, so
        # normalise without the range guard here.
        return normalise_score(value, scale)[0]
    except FieldError as err:
        if err.rule == "RANGE":
            try:
                return float(value) / float(scale) * 100
            except (TypeError, ValueError, ZeroDivisionError):
                return math.nan
        return math.nan


def _utc_or_none(value, spec):
    # The field's own format and timezone, read by the mapper's parser: the suite and the mapper
    # never disagree on what a time is (epoch_ms, strftime patterns, naive local times).
    if value is None:
        return None
    try:
        return parse_datetime(value, spec.timezone, spec.time_format)
    except FieldError:
        return None

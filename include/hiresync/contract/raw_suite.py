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


def frame_columns(payloads: list, mapping: MappingSpec, numbers: list[int] | None = None) -> dict[str, list]:
    """The frame of `payloads` as columns (name -> one value per payload), rows numbered by `numbers`
    (their rows in the run) or from 0. Built column by column: each field is read from every
    payload in one pass, with no dict per row."""
    is_object = [isinstance(p, dict) for p in payloads]
    keys = [mapping.key_of(p) if o else None for p, o in zip(payloads, is_object)]
    columns = {ROW: list(numbers) if numbers is not None else list(range(len(payloads))), IS_OBJECT: is_object,
               KEY: keys, f"{KEY}.present": [True if k is not None or not o else None for k, o in zip(keys, is_object)]}
    for spec in mapping.fields:
        extracted = [spec.extract(p) if o else None for p, o in zip(payloads, is_object)]
        finite = [not (isinstance(v, float) and not math.isfinite(v)) for v in extracted]
        values = [v if f else None for v, f in zip(extracted, finite)]  # NAN is its reason; no other check sees it
        columns[f"{spec.name}.present"] = [True if v is not None or not f or not o else None
                                           for v, f, o in zip(values, finite, is_object)]
        columns[f"{spec.name}.finite"] = finite
        if spec.type == "score":
            columns[spec.name] = [_score_or_nan(v, spec.scale_of(p) if o else None)
                                  for v, p, o in zip(values, payloads, is_object)]
        elif spec.type == "number":
            columns[spec.name] = values
        else:
            columns[spec.name] = [None if v is None else str(v) for v in values]
        if spec.type == "national_id":
            columns[f"{spec.name}.id_rule"] = [None if v is None else national_id_problem(str(v)) for v in values]
        if spec.type == "datetime":
            parsed = [_utc_or_none(v, spec) for v in values]
            columns[f"{spec.name}.utc"] = parsed
            columns[f"{spec.name}.parses"] = [v is None or t is not None for v, t in zip(values, parsed)]
    return columns


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

"""hiresync.contract.gx and hiresync.contract.expectations against real Great Expectations (no mocks).

GX is imported once per process: validation caches its context, and the module-scoped ``gx``
fixture makes the first test pay the ~3 s import instead of timing it into a random test.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hiresync.contract import gx as validation
from hiresync.privacy.identifiers import id_check_char
from hiresync.contract.gx import Check, CheckExecutionError, Failure, validate_frame

KEY = "vendor.result_id"  # dotted on purpose: the pipeline's column names contain dots
INCLUDE = Path(__file__).resolve().parents[1] / "include"


def resident_id(first17: str) -> str:
    return first17 + id_check_char(first17)


def wrong_check_char(valid_id: str) -> str:
    return valid_id[:17] + ("0" if valid_id[17] != "0" else "1")


# Birth dates 1949-12-31, 1990-03-07, 2000-02-29 (leap day).
ID_A = resident_id("11010519491231002")
ID_B = resident_id("11010119900307123")
ID_C = resident_id("44030420000229561")
ID_BAD_SUM = wrong_check_char(ID_A)
ID_BAD_DATE = resident_id("11010119900230123")  # 30 February, checksum itself correct
ID_LOWER_X = next(
    i.lower() for i in (resident_id(f"1101011990030712{d}") for d in range(10)) if i.endswith("X")
)


@pytest.fixture(scope="module")
def gx():
    return validation._gx()


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            KEY: ["r1", "r2", "r3", "r4", "r5", "r6"],
            "candidate.national_id": [ID_A, None, ID_B, np.nan, ID_C, ID_BAD_SUM],
            "candidate.email": ["a@x.cn", "b@x.cn", "no-at-sign", None, "e@x.cn", "f@x"],
            "overall_score": [0.0, 100.0, 101.0, np.nan, -0.5, 55.0],
            "status": ["completed", "cancelled", "completed", "weird", None, "completed"],
            "started_at": pd.to_datetime(
                ["2024-05-01 09:00", "2024-05-01 09:00", "2024-05-01 09:00", None,
                 "2024-05-01 09:00", "2024-05-01 10:00"]
            ),
            "completed_at": pd.to_datetime(
                ["2024-05-01 09:30", "2024-05-01 09:00", "2024-05-01 08:59", "2024-05-01 09:00",
                 None, "2024-05-01 09:59"]
            ),
            "started_at.raw": ["2024-05-01T09:00:00+08:00", "2024-05-01 09:00:00Z", "yesterday",
                               None, "2024-13-01", "2024-05-01"],
        }
    )


def run(frame: pd.DataFrame, *checks: Check, key: str = KEY) -> validation.ValidationOutcome:
    return validate_frame(frame, key, list(checks), "test_suite")


def failing_keys(outcome: validation.ValidationOutcome, rule: str) -> list[str]:
    return [f.key for f in outcome.failures if f.rule == rule]


CORE_CASES = [
    pytest.param(
        Check("candidate.national_id", "NOT_NULL", "ExpectColumnValuesToNotBeNull",
              {"column": "candidate.national_id"}),
        ["r2", "r4"], id="not_null",
    ),
    pytest.param(
        Check("overall_score", "RANGE", "ExpectColumnValuesToBeBetween",
              {"column": "overall_score", "min_value": 0, "max_value": 100}),
        ["r3", "r5"], id="between",  # NaN in r4 is skipped, not flagged
    ),
    pytest.param(
        Check("status", "IN_SET", "ExpectColumnValuesToBeInSet",
              {"column": "status", "value_set": ["completed", "cancelled"]}),
        ["r4"], id="in_set",
    ),
    pytest.param(
        Check("candidate.email", "EMAIL_FORMAT", "ExpectColumnValuesToMatchRegex",
              {"column": "candidate.email", "regex": r"^[^@\s]+@[^@\s]+\.[^@\s]+$"}),
        ["r3", "r6"], id="regex",
    ),
    pytest.param(
        Check("completed_at", "ORDER", "ExpectColumnPairValuesAToBeGreaterThanB",
              {"column_A": "completed_at", "column_B": "started_at", "or_equal": True}),
        ["r3", "r6"], id="pair_or_equal",  # r2 equal passes; r4/r5 have a null side
    ),
    pytest.param(
        Check("started_at", "DATETIME", "ExpectColumnValuesToBeDateutilParseable",
              {"column": "started_at.raw"}),
        ["r3", "r5"], id="dateutil",
    ),
    pytest.param(
        Check("started_at", "DATETIME", "ExpectColumnValuesToBeIso8601Datetime",
              {"column": "started_at.raw"}),
        ["r3", "r5"], id="iso8601",
    ),
]


@pytest.mark.parametrize(("check", "expected"), CORE_CASES)
def test_each_expectation_reports_exactly_the_failing_keys(gx, frame, check, expected):
    outcome = run(frame, check)

    assert failing_keys(outcome, check.rule) == expected
    assert all(f.field == check.field for f in outcome.failures)
    assert outcome.success is False
    [result] = outcome.expectation_results
    assert result["unexpected_count"] == len(expected)
    assert result["success"] is False


def test_passing_check_reports_no_failures(gx, frame):
    outcome = run(frame, Check("overall_score", "RANGE", "ExpectColumnValuesToBeBetween",
                               {"column": "overall_score", "min_value": -1, "max_value": 101}))

    assert outcome.failures == []
    assert outcome.success is True


def test_duplicated_keys_are_reported_once(gx):
    df = pd.DataFrame({KEY: ["a", "b", "b", "c", "c", "c"], "x": range(6)})

    outcome = run(df, Check(KEY, "DUPLICATE", "ExpectColumnValuesToBeUnique", {"column": KEY}))

    assert outcome.failures == [Failure("b", KEY, "DUPLICATE"), Failure("c", KEY, "DUPLICATE")]
    assert outcome.expectation_results[0]["unexpected_count"] == 5  # rows, not keys


def test_pair_check_can_still_flag_rows_with_a_null_side_when_asked(gx, frame):
    check = Check("completed_at", "ORDER", "ExpectColumnPairValuesAToBeGreaterThanB",
                  {"column_A": "completed_at", "column_B": "started_at", "or_equal": True,
                   "ignore_row_if": "neither"})

    assert failing_keys(run(frame, check), "ORDER") == ["r3", "r4", "r5", "r6"]


def test_rows_are_reported_even_when_mostly_lets_the_check_pass(gx, frame):
    outcome = run(frame, Check("status", "IN_SET", "ExpectColumnValuesToBeInSet",
                               {"column": "status", "value_set": ["completed", "cancelled"],
                                "mostly": 0.5}))

    assert outcome.success is True
    assert failing_keys(outcome, "IN_SET") == ["r4"]


def test_resident_id_expectation_flags_exactly_the_invalid_ids(gx):
    values = {
        "ok_1": ID_A, "ok_2": ID_B, "ok_leap_day": ID_C, "ok_lower_x": ID_LOWER_X,
        "ok_padded": f"  {ID_B} ",
        "bad_checksum": ID_BAD_SUM, "bad_birth_date": ID_BAD_DATE, "bad_short": ID_A[:17],
        "bad_letters": "11010519491231002A", "bad_number": 12345, "bad_15_digit": "110105491231002",
        "null_none": None, "null_nan": np.nan,
    }
    df = pd.DataFrame({KEY: list(values), "candidate.national_id": list(values.values())})

    outcome = run(df, Check("candidate.national_id", "ID_CHECKSUM",
                            "ExpectColumnValuesToBeValidResidentId",
                            {"column": "candidate.national_id"}))

    assert sorted(failing_keys(outcome, "ID_CHECKSUM")) == sorted(
        k for k in values if k.startswith("bad_")
    )
    result = outcome.expectation_results[0]
    assert result["missing_count"] == 2  # nulls are skipped, not failures


def test_mobile_expectation_flags_exactly_the_invalid_numbers(gx):
    values = {
        "ok_plain": "13800138000", "ok_plus86": "+86 138 0013 8000", "ok_0086": "008619912345678",
        "ok_dashes": "138-0013-8000", "ok_int": 15912345678,
        "bad_prefix_12": "12800138000", "bad_short": "1380013800", "bad_long": "138001380001",
        "bad_landline": "010-62345678", "bad_text": "call me",
        "null_none": None, "null_nan": np.nan,
    }
    df = pd.DataFrame({KEY: list(values), "candidate.mobile": list(values.values())})

    outcome = run(df, Check("candidate.mobile", "MOBILE_FORMAT",
                            "ExpectColumnValuesToBeValidCnMobile", {"column": "candidate.mobile"}))

    assert sorted(failing_keys(outcome, "MOBILE_FORMAT")) == sorted(
        k for k in values if k.startswith("bad_")
    )


def test_every_check_survives_all_null_columns(gx):
    df = pd.DataFrame({KEY: ["a", "b"], "c.s": [None, None], "c.n": [np.nan, np.nan],
                       "c.t": pd.to_datetime([None, None])})
    checks = [
        Check("c.s", "NOT_NULL", "ExpectColumnValuesToNotBeNull", {"column": "c.s"}),
        Check("c.n", "RANGE", "ExpectColumnValuesToBeBetween",
              {"column": "c.n", "min_value": 0, "max_value": 1}),
        Check("c.s", "IN_SET", "ExpectColumnValuesToBeInSet", {"column": "c.s", "value_set": ["x"]}),
        Check("c.s", "FORMAT", "ExpectColumnValuesToMatchRegex", {"column": "c.s", "regex": "x"}),
        Check("c.s", "UNIQUE", "ExpectColumnValuesToBeUnique", {"column": "c.s"}),
        Check("c.t", "ORDER", "ExpectColumnPairValuesAToBeGreaterThanB",
              {"column_A": "c.t", "column_B": "c.t", "or_equal": True}),
        Check("c.s", "DATETIME", "ExpectColumnValuesToBeDateutilParseable", {"column": "c.s"}),
        Check("c.s", "DATETIME", "ExpectColumnValuesToBeIso8601Datetime", {"column": "c.s"}),
        Check("c.s", "ID_CHECKSUM", "ExpectColumnValuesToBeValidResidentId", {"column": "c.s"}),
        Check("c.n", "MOBILE_FORMAT", "ExpectColumnValuesToBeValidCnMobile", {"column": "c.n"}),
    ]

    outcome = run(df, *checks)

    assert outcome.failures == [Failure("a", "c.s", "NOT_NULL"), Failure("b", "c.s", "NOT_NULL")]


def test_one_suite_returns_results_in_check_order_with_json_safe_stats(gx, frame):
    checks = [case.values[0] for case in CORE_CASES] + [
        Check("candidate.national_id", "ID_CHECKSUM", "ExpectColumnValuesToBeValidResidentId",
              {"column": "candidate.national_id"}),
        Check("overall_score", "NOT_NULL", "ExpectColumnValuesToNotBeNull",
              {"column": "overall_score"}),
    ]

    outcome = validate_frame(frame, KEY, checks, "batch_42")

    assert [(r["field"], r["rule"], r["expectation"]) for r in outcome.expectation_results] == [
        (c.field, c.rule, c.expectation) for c in checks
    ]
    assert [r["unexpected_count"] for r in outcome.expectation_results] == [
        2, 2, 1, 2, 2, 2, 2, 1, 1
    ]
    assert outcome.suite_name == "batch_42"
    assert outcome.statistics == {
        "evaluated_expectations": 9, "successful_expectations": 0,
        "unsuccessful_expectations": 9, "success_percent": 0.0, "rows_evaluated": 6,
    }
    # allow_nan=False fails on NaN; the default encoder fails on numpy scalars.
    json.dumps(dataclasses.asdict(outcome), allow_nan=False)
    assert Failure("r6", "candidate.national_id", "ID_CHECKSUM") in outcome.failures


def test_no_personal_data_in_outcome(gx):
    planted_ids = [ID_BAD_SUM, ID_BAD_DATE, ID_A]  # ID_A fails only the uniqueness check
    planted_mobiles = ["12800138000", "13800138000"]
    planted_emails = ["zhang.wei@example.cn", "li.na(at)example.cn"]
    df = pd.DataFrame(
        {
            KEY: ["p1", "p2", "p3", "p4"],
            "candidate.national_id": [ID_BAD_SUM, ID_BAD_DATE, ID_A, ID_A],
            "candidate.mobile": ["12800138000", "13800138000", "13800138000", None],
            "candidate.email": ["zhang.wei@example.cn", "li.na(at)example.cn", None, None],
        }
    )
    checks = [
        Check("candidate.national_id", "ID_CHECKSUM", "ExpectColumnValuesToBeValidResidentId",
              {"column": "candidate.national_id"}),
        Check("candidate.national_id", "DUPLICATE_ID", "ExpectColumnValuesToBeUnique",
              {"column": "candidate.national_id"}),
        Check("candidate.national_id", "ID_PREFIX", "ExpectColumnValuesToBeInSet",
              {"column": "candidate.national_id", "value_set": ["none-of-them"]}),
        Check("candidate.mobile", "MOBILE_FORMAT", "ExpectColumnValuesToBeValidCnMobile",
              {"column": "candidate.mobile"}),
        Check("candidate.mobile", "DUPLICATE_MOBILE", "ExpectColumnValuesToBeUnique",
              {"column": "candidate.mobile"}),
        Check("candidate.email", "EMAIL_FORMAT", "ExpectColumnValuesToMatchRegex",
              {"column": "candidate.email", "regex": r"^[^@\s]+@[^@\s]+\.[^@\s]+$"}),
    ]

    outcome = run(df, *checks)

    # The failures must really be there, or absence of values would prove nothing.
    assert {(f.key, f.rule) for f in outcome.failures} >= {
        ("p1", "ID_CHECKSUM"), ("p2", "ID_CHECKSUM"), ("p3", "DUPLICATE_ID"),
        ("p4", "DUPLICATE_ID"), ("p1", "MOBILE_FORMAT"), ("p2", "DUPLICATE_MOBILE"),
        ("p2", "EMAIL_FORMAT"),
    }
    texts = [repr(outcome), json.dumps(dataclasses.asdict(outcome))]
    for value in planted_ids + planted_mobiles + planted_emails + [ID_A[:17]]:
        for text in texts:
            assert value not in text


@pytest.fixture(scope="module")
def exploding_expectation(gx) -> str:
    """A test-only expectation whose metric raises an error quoting the column value, as pandas
    conversions do ("could not convert string to float: '...'")."""
    from great_expectations.execution_engine import PandasExecutionEngine
    from great_expectations.expectations.expectation import ColumnMapExpectation
    from great_expectations.expectations.metrics.map_metric_provider import (
        ColumnMapMetricProvider,
        column_condition_partial,
    )

    class ColumnValuesHiresyncTestExplode(ColumnMapMetricProvider):
        condition_metric_name = "column_values.hiresync_test_explode"

        @column_condition_partial(engine=PandasExecutionEngine)
        def _pandas(cls, column, **kwargs):
            raise ValueError(f"could not convert string to float: {column.iloc[0]!r}")

    class ExpectColumnValuesToHiresyncTestExplode(ColumnMapExpectation):
        map_metric = "column_values.hiresync_test_explode"
        success_keys = ("mostly",)

    return ExpectColumnValuesToHiresyncTestExplode.__name__


def test_check_gx_cannot_evaluate_raises_without_leaking_values(gx, exploding_expectation, caplog):
    caplog.set_level(logging.DEBUG)
    df = pd.DataFrame({KEY: ["a"], "candidate.national_id": [ID_B]})
    check = Check("candidate.national_id", "BOOM", exploding_expectation,
                  {"column": "candidate.national_id"})

    with pytest.raises(CheckExecutionError) as err:
        run(df, check)

    message = str(err.value)
    assert "candidate.national_id/BOOM" in message and "ValueError" in message
    assert ID_B not in message
    assert ID_B not in caplog.text


def test_unknown_expectation_raises_value_error_naming_check(gx, frame):
    check = Check("overall_score", "RANGE", "ExpectColumnValuesToBeSomethingMadeUp",
                  {"column": "overall_score"})

    with pytest.raises(ValueError, match="ExpectColumnValuesToBeSomethingMadeUp") as err:
        run(frame, check)
    assert "overall_score/RANGE" in str(err.value)


def test_snake_case_name_is_not_accepted(gx, frame):
    with pytest.raises(ValueError, match="unknown expectation"):
        run(frame, Check(KEY, "UNIQUE", "expect_column_values_to_be_unique", {"column": KEY}))


def test_aggregate_expectation_is_rejected_because_it_has_no_rows(gx, frame):
    check = Check("overall_score", "MEAN", "ExpectColumnMeanToBeBetween",
                  {"column": "overall_score", "min_value": 0})

    with pytest.raises(ValueError, match="not a row-level"):
        run(frame, check)


def test_missing_columns_are_named(gx, frame):
    with pytest.raises(ValueError, match=r"overall\.score"):
        run(frame, Check("overall_score", "NOT_NULL", "ExpectColumnValuesToNotBeNull",
                         {"column": "overall.score"}))
    with pytest.raises(ValueError, match="key column"):
        run(frame, key="id")


def test_integer_keys_with_nulls_come_back_as_plain_strings(gx):
    df = pd.DataFrame({"result_id": [101, None, 103], "overall_score": [1.0, 500.0, 500.0]})

    outcome = run(df, Check("overall_score", "RANGE", "ExpectColumnValuesToBeBetween",
                            {"column": "overall_score", "min_value": 0, "max_value": 100}),
                  key="result_id")

    assert [f.key for f in outcome.failures] == ["", "103"]


@pytest.mark.parametrize(
    "index",
    [
        pd.Index([0, 1, 0, 1]),  # concat of two batches without ignore_index
        pd.Index([7, 8, 9, 10], name="row"),  # a named index makes GX report it instead of the key
        pd.MultiIndex.from_tuples([(1, 1), (1, 2), (2, 1), (2, 2)], names=["file", "line"]),
    ],
    ids=["duplicate_labels", "named", "multi"],
)
def test_keys_are_right_whatever_the_frame_index(gx, index):
    df = pd.DataFrame({KEY: ["a", "b", "c", "d"], "overall_score": [500.0, 1.0, 500.0, 2.0]},
                      index=index)

    outcome = run(df, Check("overall_score", "RANGE", "ExpectColumnValuesToBeBetween",
                            {"column": "overall_score", "min_value": 0, "max_value": 100}))

    assert [f.key for f in outcome.failures] == ["a", "c"]


def test_frame_is_not_modified(gx, frame):
    before = frame.copy(deep=True)

    run(frame, *(case.values[0] for case in CORE_CASES))

    pd.testing.assert_frame_equal(frame, before)


def test_context_is_built_once_per_process(gx, frame):
    run(frame, CORE_CASES[0].values[0])
    run(frame, CORE_CASES[1].values[0])

    assert validation._gx() is gx


def test_a_suite_is_reused_for_the_same_checks_and_rebuilt_for_other_ones(gx):
    """Suites are kept per process (building one is quadratic in its checks): another window gets
    its own verdict, and a check that differs only in its kwargs is another suite."""
    df = pd.DataFrame({KEY: ["a", "b", "c"], "score": [10, 50, 90]})
    at_most = lambda top: Check("score", "RANGE", "ExpectColumnValuesToBeBetween",  # noqa: E731
                                {"column": "score", "min_value": 0, "max_value": top})

    assert failing_keys(run(df, at_most(60)), "RANGE") == ["c"]
    assert failing_keys(run(df.assign(score=[70, 10, 20]), at_most(60)), "RANGE") == ["a"]
    assert failing_keys(run(df, at_most(40)), "RANGE") == ["b", "c"]
    assert validation._suites["test_suite"][0] == repr([at_most(40)])  # one per name: the latest checks


def test_importing_validation_does_not_import_great_expectations():
    code = (
        "import sys, hiresync.contract.gx; "
        "sys.exit('great_expectations' in sys.modules or 'hiresync.contract.expectations' in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(INCLUDE)})


def test_nothing_of_a_window_is_held_after_its_validation(gx):
    """GX's execution engine kept the frame it validated last, and every metric computed on it, until
    the next validation: a window's memory held through the rest of the step (contract.gx._let_go)."""
    import gc

    rows = 3_137  # a length no other frame here has
    df = pd.DataFrame({KEY: [f"k{i}" for i in range(rows)], "overall_score": [50.0] * (rows - 1) + [500.0]})
    outcome = run(df, Check("overall_score", "RANGE", "ExpectColumnValuesToBeBetween",
                            {"column": "overall_score", "min_value": 0, "max_value": 100}))
    assert outcome.failures == [Failure(f"k{rows - 1}", "overall_score", "RANGE")]
    del df
    gc.collect()
    # type(), not isinstance(): the heap also holds lazy proxies (Airflow's) that import on any look
    assert not [o for o in gc.get_objects() if type(o) in (pd.DataFrame, pd.Series) and len(o) == rows]

"""Run one batch of vendor results through Great Expectations and report which rows broke which rule.

GX Core is called directly (not through the Airflow provider, see STACK_NOTES). Importing
great_expectations costs about 1.5 s and 150 MB (hiresync.contract.gx_import), and this module is
imported on DAG-parse paths, so every GX import happens inside a function and the context is built
once per process.

Personal data: the frame holds resident ID numbers, phones and emails, and GX's COMPLETE results
echo the failing VALUES (unexpected_list, partial_* lists, and even every unexpected_index_list
entry, which carries the checked column's value next to the key). Only keys, counts and
percentages leave this module; GX's own exception logging is silenced because exception messages
can quote values (e.g. pandas' "could not convert string to float: '...'").

Column names with dots ("candidate.national_id") need no renaming: GX's pandas engine indexes
columns by exact name for every expectation used here (covered by the tests).
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hiresync.heap import freeze_imports

if TYPE_CHECKING:
    import pandas as pd

# Marker put in each expectation's meta: GX does not return results in suite order (it groups them
# by metric), so this is how a result is matched back to its Check.
_META_KEY = "hiresync_check"
# Kwargs naming frame columns, checked up front so a mapping typo gives a clear error instead of a
# GX metric-resolution error.
_COLUMN_KWARGS = ("column", "column_A", "column_B")
_COLUMN_LIST_KWARGS = ("column_list",)
# Set by validate_frame itself; a mapping must not override them.
_RESERVED_KWARGS = ("meta", "result_format", "catch_exceptions")
# Exception class names at the start of a traceback line; messages are never copied out.
_EXC_NAME = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception))\b", re.MULTILINE)


@dataclass(frozen=True)
class Check:
    field: str  # canonical field it guards, also the Failure's field
    rule: str  # reason code, e.g. NOT_NULL, ID_CHECKSUM, RANGE, ORDER
    expectation: str  # GX expectation class name, e.g. "ExpectColumnValuesToNotBeNull"
    kwargs: dict  # expectation kwargs using the frame's column names


@dataclass(frozen=True)
class Failure:
    key: str  # the key column's value of the failing row ("" if that value is null)
    field: str
    rule: str


@dataclass
class ValidationOutcome:
    failures: list[Failure]  # one per (key, check) that failed, in check order then row order
    suite_name: str
    success: bool
    statistics: dict  # evaluated/successful/unsuccessful expectations, success_percent, rows_evaluated
    # One per check, in check order, JSON-safe, no values. unexpected_percent is GX's: of the
    # non-null values (nulls are counted in missing_count, None where GX does not report it).
    expectation_results: list[dict]


class CheckExecutionError(RuntimeError):
    """A check could not be evaluated at all (e.g. a type mismatch inside GX).

    Raised rather than reported as a failed check: the rows were not judged, so passing them on
    would be wrong and blaming all of them would be too. The message names the check and the
    exception types only, never GX's message, which may quote column values.
    """


@dataclass(frozen=True)
class _Gx:
    batch_definition: Any  # great_expectations BatchDefinition for a whole in-memory DataFrame
    suite_cls: type
    find_expectation: Callable[[str], type | None]  # class name -> registered Expectation class
    row_level_bases: tuple[type, ...]


_gx_state: _Gx | None = None
_suites: dict[str, tuple[str, Any]] = {}  # suite name -> (its checks, described; the GX suite): validate_frame
_gx_lock = threading.Lock()


def _gx() -> _Gx:
    """Import GX and build the ephemeral context once per process."""
    global _gx_state
    with _gx_lock:
        if _gx_state is None:
            _gx_state = _build_gx()
            freeze_imports()  # GX's modules and context live as long as the process (hiresync/heap.py)
        return _gx_state


def _build_gx() -> _Gx:
    from hiresync.contract.gx_import import import_gx

    gx = import_gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.registry import get_expectation_impl
    from great_expectations.util import camel_to_snake

    import hiresync.contract.expectations  # noqa: F401  defining the classes registers them with GX

    def find_expectation(name: str) -> type | None:
        # GX's registry holds every defined Expectation subclass (core, hiresync's, any other
        # custom one) keyed by snake_case type. The name check rejects spellings that only
        # snake-case to a registered type (e.g. "expect_column_values_to_be_unique").
        try:
            cls = get_expectation_impl(camel_to_snake(name))
        except ExpectationNotFoundError:
            return None
        return cls if cls.__name__ == name else None

    # validation_graph (ERROR) and metrics_calculator (WARNING) log metric exceptions with their
    # messages, which can quote column values. The suite path used here did not hit them in
    # 1.24.1, but other GX paths do; validate_frame raises a value-free CheckExecutionError.
    logging.getLogger("great_expectations.validator").setLevel(logging.CRITICAL)

    # get_context(mode="ephemeral") alone uses init_temp_docs_sites=True, which creates (and
    # deletes) a temp directory; an explicit in-memory config writes nothing anywhere.
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    # GX fingerprints every in-memory batch (MD5 over pandas' hash of each cell) for the batch's
    # metadata, which nothing here reads: a cost per cell on every validation. Its own size
    # threshold for that turns it off.
    from great_expectations.execution_engine import pandas_execution_engine

    pandas_execution_engine.HASH_THRESHOLD = 0
    context = gx.get_context(mode="ephemeral", project_config=config)
    batch_definition = (
        context.data_sources.add_pandas("hiresync")
        .add_dataframe_asset("batch")
        .add_batch_definition_whole_dataframe("whole")
    )
    return _Gx(
        batch_definition=batch_definition,
        suite_cls=gx.ExpectationSuite,
        find_expectation=find_expectation,
        row_level_bases=(ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation),
    )


def validate_frame(
    frame: pd.DataFrame, key_column: str, checks: list[Check], suite_name: str
) -> ValidationOutcome:
    """Run ``checks`` as one GX suite over ``frame``; return failing (key, field, rule) triples.

    A row counts as failing a check even when ``mostly`` lets the check as a whole succeed: the
    caller decides per row, the check's ``success`` only summarises.
    """
    if key_column not in frame.columns:
        raise ValueError(f"key column {key_column!r} is not in the frame")
    for check in checks:
        _require_columns(check, frame)

    gx_state = _gx()
    # A suite is built once and reused for every window it judges while its checks stay the same
    # (GX compares each added expectation with those already in the suite: quadratic in the ~40
    # checks). One per suite name: other checks under the same name replace it.
    described = repr(checks)
    cached = _suites.get(suite_name)
    if cached is not None and cached[0] == described:
        suite = cached[1]
    else:
        suite = gx_state.suite_cls(name=suite_name)
        for index, check in enumerate(checks):
            suite.add_expectation(_build_expectation(gx_state, check, index))
        _suites[suite_name] = (described, suite)

    result_format = {
        "result_format": "COMPLETE",
        "unexpected_index_column_names": [key_column],
        "return_unexpected_index_query": False,
        "partial_unexpected_count": 0,  # the partial lists hold values; we never read them
    }
    # GX looks failing rows up by index label (df.at[label, key]): duplicate labels (a concat of
    # batches) return several rows per label, and a named index switches GX to reporting the index
    # instead of the key column. A fresh RangeIndex avoids both; copy-on-write keeps it cheap.
    gx_frame = frame.reset_index(drop=True)
    # GX's fluent datasources keep per-asset state; one validation at a time per process is the
    # safe reading of "not documented as thread-safe". Validation is CPU-bound anyway.
    with _gx_lock:
        batch = gx_state.batch_definition.get_batch(batch_parameters={"dataframe": gx_frame})
        suite_result = batch.validate(suite, result_format=result_format)
        _let_go(batch)

    by_index = {r.expectation_config.meta[_META_KEY]: r for r in suite_result.results}
    failures: list[Failure] = []
    seen: set[Failure] = set()
    expectation_results: list[dict] = []
    for index, check in enumerate(checks):
        result = by_index[index]
        _raise_if_errored(check, result.exception_info)
        stats = result.result or {}
        keys = _failing_keys(check, stats, key_column)
        for key in keys:
            failure = Failure(key=key, field=check.field, rule=check.rule)
            # Duplicated keys (the uniqueness check) yield the same triple twice; once is enough.
            if failure not in seen:
                seen.add(failure)
                failures.append(failure)
        expectation_results.append(
            {
                "field": check.field,
                "rule": check.rule,
                "expectation": check.expectation,
                "success": bool(result.success),
                "element_count": _count(stats.get("element_count")),
                "unexpected_count": _count(stats.get("unexpected_count")),
                "unexpected_percent": _percent(stats.get("unexpected_percent")),
                "missing_count": _count(stats.get("missing_count")),
            }
        )

    raw_stats = suite_result.statistics
    statistics = {
        "evaluated_expectations": _count(raw_stats.get("evaluated_expectations")),
        "successful_expectations": _count(raw_stats.get("successful_expectations")),
        "unsuccessful_expectations": _count(raw_stats.get("unsuccessful_expectations")),
        "success_percent": _percent(raw_stats.get("success_percent")),
        "rows_evaluated": len(frame),
    }
    return ValidationOutcome(
        failures=failures,
        suite_name=suite_name,
        success=bool(suite_result.success),
        statistics=statistics,
        expectation_results=expectation_results,
    )


def _describe(check: Check) -> str:
    return f"check {check.field}/{check.rule} ({check.expectation})"


def _require_columns(check: Check, frame: pd.DataFrame) -> None:
    named = [check.kwargs[k] for k in _COLUMN_KWARGS if k in check.kwargs]
    for k in _COLUMN_LIST_KWARGS:
        named.extend(check.kwargs.get(k) or [])
    missing = [c for c in named if c not in frame.columns]
    if missing:
        raise ValueError(f"{_describe(check)} names columns not in the frame: {missing}")
    reserved = [k for k in _RESERVED_KWARGS if k in check.kwargs]
    if reserved:
        raise ValueError(f"{_describe(check)} sets reserved kwargs {reserved}")


def _build_expectation(gx_state: _Gx, check: Check, index: int) -> Any:
    cls = gx_state.find_expectation(check.expectation)
    if cls is None:
        raise ValueError(
            f"check {check.field}/{check.rule}: unknown expectation {check.expectation!r}"
        )
    if not issubclass(cls, gx_state.row_level_bases):
        # Aggregate/table expectations (mean, row count...) have no failing rows to report.
        raise ValueError(
            f"check {check.field}/{check.rule}: {check.expectation!r} is not a row-level "
            "(column map, column pair map or multicolumn map) expectation"
        )
    kwargs = dict(check.kwargs)
    if issubclass(cls, gx_state.row_level_bases[1]):
        # GX's pair default ("both_values_are_missing") flags a row where only one side is null,
        # e.g. no completed_at yet. Nulls are the NOT_NULL check's business.
        kwargs.setdefault("ignore_row_if", "either_value_is_missing")
    try:
        return cls(**kwargs, meta={_META_KEY: index})
    except Exception as exc:  # pydantic validation of mapping-file kwargs: config, not PII
        raise ValueError(f"{_describe(check)} has invalid kwargs: {exc}") from None


def _let_go(batch: Any) -> None:
    """GX's execution engine keeps the frame it validated last and every metric it computed on it
    (in 1.24: the batch manager's caches and `_metric_cache`) until the next validation replaces them:
    a window's frame and its metrics, held through the rest of the step and into the next one, and
    two windows' worth at the start of each validation. Nothing here reads them again."""
    engine = batch.data.execution_engine
    engine.batch_manager.reset_batch_cache()
    engine.batch_manager.batch_data_cache.clear()
    metrics = getattr(engine, "_metric_cache", None)
    if isinstance(metrics, dict):
        metrics.clear()


def _raise_if_errored(check: Check, exception_info: Any) -> None:
    # exception_info is {"raised_exception": ...} or {metric_id: {"raised_exception": ...}, ...}.
    infos = exception_info.values() if isinstance(exception_info, dict) else []
    if isinstance(exception_info, dict) and "raised_exception" in exception_info:
        infos = [exception_info]
    errored = [i for i in infos if isinstance(i, dict) and i.get("raised_exception")]
    if not errored:
        return
    names: list[str] = []
    for info in errored:
        for qualified in _EXC_NAME.findall(info.get("exception_traceback") or ""):
            name = qualified.rsplit(".", 1)[-1]
            if name not in names:
                names.append(name)
    raise CheckExecutionError(
        f"{_describe(check)} could not be evaluated; GX raised {', '.join(names) or 'an exception'} "
        "(message withheld: it may contain column values)"
    )


def _failing_keys(check: Check, stats: dict, key_column: str) -> list[str]:
    unexpected_count = _count(stats.get("unexpected_count")) or 0
    entries = stats.get("unexpected_index_list")
    if entries is None:
        entries = []
    # Each entry is {key_column: key, <checked column(s)>: VALUE}; take only the key. Every row-level
    # expectation we allow returns the full list under COMPLETE in GX 1.24 (checked for not-null,
    # between, in-set, regex, unique, column pair, dateutil and the custom ones); a short list
    # would silently pass rows, so treat it as a bug rather than guess.
    if len(entries) != unexpected_count:
        raise CheckExecutionError(
            f"{_describe(check)}: GX reported {unexpected_count} unexpected rows but indexed "
            f"{len(entries)}"
        )
    return [_key_text(entry.get(key_column)) for entry in entries]


def _key_text(value: Any) -> str:
    import pandas as pd  # already loaded by the caller's frame; import is a dict lookup

    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    if hasattr(value, "item"):  # numpy scalar -> Python scalar
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        # Integer keys become floats when the column also holds NaN; "42" not "42.0".
        return str(int(value))
    return str(value)


def _count(value: Any) -> int | None:
    return None if value is None else int(value)


def _percent(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


# Rows per GX validation. A validation has a fixed cost of a few tenths of a second whatever its
# size (GX builds a metric graph per expectation), so 2,000-row micro-batches spent most of validate
# there: bench/validation_mapping.py prints the raw suite in frames of this size beside 2,000-row
# ones (close to 3x in the README's latest figures).
WINDOW_ROWS = 10_000


class FrameWindow:
    """Frame columns of one suite gathered across micro-batches, handed to `judge` (name -> list of
    values) every `size` rows and at `flush()`. The raw suite's ~80 columns for a window of rows are
    a few MB, so memory stays bounded by the window."""

    def __init__(self, judge: Callable[[dict[str, list]], None], size: int = WINDOW_ROWS):
        self.judge, self.size = judge, size
        self.columns: dict[str, list] = {}
        self.rows = 0

    def add(self, columns: dict[str, list]) -> None:
        """The columns of one batch (a frame_columns call: every batch has the same names)."""
        rows = len(next(iter(columns.values()), []))
        if not rows:
            return
        if not self.columns:
            self.columns = {name: [] for name in columns}
        for name, values in self.columns.items():
            values.extend(columns[name])
        self.rows += rows
        if self.rows >= self.size:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            columns, self.columns, self.rows = self.columns, {}, 0
            self.judge(columns)


class RunningSummary:
    """A suite's summary over a run, merged window by window as they are judged: a run of a million
    rows keeps one summary, not one per window."""

    def __init__(self) -> None:
        self.total: dict | None = None

    def add(self, part: dict) -> None:
        self.total = merge_summaries(self.total, part)


def merge_summaries(total: dict | None, part: dict) -> dict:
    """The value-free summary of a suite run over a whole run, from its micro-batches' summaries:
    counts add up, an expectation succeeds only if it succeeded in every batch."""
    if total is None:
        return {**part, "expectations": [dict(e) for e in part.get("expectations") or []],
                "statistics": dict(part.get("statistics") or {})}
    total["rows"] = total.get("rows", 0) + part.get("rows", 0)
    total["failed_rows"] = total.get("failed_rows", 0) + part.get("failed_rows", 0)
    mine, theirs = total.get("expectations") or [], part.get("expectations") or []
    if not mine:
        total["expectations"] = mine = [dict(e) for e in theirs]
    elif theirs:
        for e, p in zip(mine, theirs):
            e["success"] = bool(e["success"] and p["success"])
            for k in ("element_count", "unexpected_count", "missing_count"):
                if p.get(k) is not None:
                    e[k] = (e.get(k) or 0) + p[k]
            judged = (e.get("element_count") or 0) - (e.get("missing_count") or 0)
            e["unexpected_percent"] = (100.0 * (e.get("unexpected_count") or 0) / judged) if judged > 0 else None
    if mine:
        ok = sum(1 for e in mine if e["success"])
        stats = total.setdefault("statistics", {})
        stats.update(evaluated_expectations=len(mine), successful_expectations=ok,
                     unsuccessful_expectations=len(mine) - ok, success_percent=100.0 * ok / len(mine),
                     rows_evaluated=total["rows"])
    return total

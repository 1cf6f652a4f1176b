"""Schema drift: a vendor's silent format change freezes the source instead of polluting the EHR.

A batch drifts when more than the source's `drift_threshold` share of it fails (raw suite, mapping
and canonical suite together), or when a required field is absent from every record. The map step
then freezes the source (hub table `source_state`) and fails the run before load, so nothing of
the batch is loaded and the watermark stays. Every later run refuses to start until someone runs
`hiresync source unfreeze <source>`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone

from connectors.records import get_path
from hiresync.errors import HireSyncError
from hiresync.hub.models import Run, SourceState
from hiresync.hub.store import transaction
from hiresync.mapping.spec import MappingSpec
from hiresync.config.settings import Settings
from hiresync.config.sources import SourceConfig


class SchemaDrift(HireSyncError):
    """The batch looks like a changed vendor schema: the source is now frozen."""


class SourceFrozen(HireSyncError):
    """A run of a frozen source was refused."""


@dataclass(frozen=True)
class Verdict:
    drifted: bool
    reason: str  # which expectation broke, with counts; no values
    failed_rows: int
    rows: int

    def as_dict(self) -> dict:
        return {"drifted": self.drifted, "reason": self.reason, "failed_rows": self.failed_rows, "rows": self.rows}


class PresenceTracker:
    """Which required paths were seen at least once in a batch (cheap: one get_path per field and record)."""

    def __init__(self, mapping: MappingSpec):
        self.paths = {f.name: f.path for f in mapping.fields if f.required and f.path}
        self.seen: set[str] = set()

    def see(self, payload: dict) -> None:
        for name, path in self.paths.items():
            if name not in self.seen and get_path(payload, path) is not None:
                self.seen.add(name)

    def absent(self) -> list[str]:
        return [name for name in self.paths if name not in self.seen]


def judge(source: SourceConfig, rows: int, problems_by_row: dict[int, list[dict]], absent: list[str],
          mapping: MappingSpec) -> Verdict:
    failed = len(problems_by_row)
    if rows < source.drift_min_rows:
        return Verdict(False, f"batch of {rows} rows is below drift_min_rows {source.drift_min_rows}", failed, rows)
    if absent:
        paths = {f.name: f.path for f in mapping.fields}
        fields = ", ".join(f"{name} (path {paths[name]})" for name in absent)
        return Verdict(True, f"required field absent from every record of the batch: {fields} "
                             f"(expectation NOT_NULL)", failed, rows)
    share = failed / rows if rows else 0.0
    if share > source.drift_threshold:
        broke = Counter((p["field"], p["rule"]) for ps in problems_by_row.values() for p in ps)
        top = ", ".join(f"{f} {r} {n}" for (f, r), n in broke.most_common(5))
        return Verdict(True, f"{failed} of {rows} rows failed ({share:.0%} > drift_threshold "
                             f"{source.drift_threshold:.0%}); expectations broken: {top}", failed, rows)
    return Verdict(False, "", failed, rows)


def freeze(settings: Settings, source: str, run_id: str, reason: str, summary: dict) -> None:
    """Mark the source frozen and keep the batch's validation summary on the run for Data Docs."""
    with transaction(settings.hub_url) as s:
        state = s.get(SourceState, source, with_for_update=True)
        if state is None:
            state = SourceState(source=source, state="frozen")
            s.add(state)
        state.state, state.reason, state.run_id = "frozen", reason, run_id
        state.updated_at = datetime.now(timezone.utc)
        run = s.get(Run, run_id)
        if run is not None:
            run.validation_summary = summary


def ensure_not_frozen(settings: Settings, source: str) -> None:
    with transaction(settings.hub_url) as s:
        state = s.get(SourceState, source)
        if state is not None and state.state == "frozen":
            raise SourceFrozen(f"source {source!r} is frozen since run {state.run_id}: {state.reason}; "
                               f"fix the mapping or the vendor, then run `hiresync source unfreeze {source}`")


def unfreeze(settings: Settings, source: str) -> bool:
    """True if the source was frozen. The frozen batch is pulled again by the next run (the watermark stayed)."""
    with transaction(settings.hub_url) as s:
        state = s.get(SourceState, source, with_for_update=True)
        if state is None or state.state != "frozen":
            return False
        state.state, state.reason = "active", f"unfrozen after: {state.reason}"
        state.updated_at = datetime.now(timezone.utc)
        return True


def state_of(settings: Settings, source: str) -> dict:
    with transaction(settings.hub_url) as s:
        state = s.get(SourceState, source)
        if state is None:
            return {"state": "active", "reason": None, "run_id": None}
        return {"state": state.state, "reason": state.reason, "run_id": state.run_id}

"""The tables the analytics work on, read from the hub for a period and optionally one department.

Only non-personal columns are read: ids, vendor, position, department, times, statuses, scores and
stages. The period is in the group's time zone (Settings.timezone): `--from 2026-11-01` starts at
00:00 Beijing time; a result belongs to the period of its interview (completed, else started)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import and_, func, select

from hiresync.config.settings import Settings
from hiresync.config.sources import load_sources
from hiresync.delivery.targets import competency_resolver
from hiresync.errors import HireSyncError
from hiresync.hub.models import DimensionScore, InterviewResult, Outbox, PerformanceRating, Run, StatusEvent
from hiresync.ingest.ratings import ratings_by_candidate
from hiresync.hub.store import transaction
from hiresync.mapping.spec import MappingSpec

RESULT_COLUMNS = ["result_id", "candidate_id", "vendor", "position_code", "position_name", "department",
                  "completed_at", "status"]


@dataclass
class Facts:
    results: pd.DataFrame
    events: pd.DataFrame
    scores: pd.DataFrame      # candidate_id, position_code, competency, score: of results that led to a hire
    ratings: pd.DataFrame     # candidate_id, rating
    runs: pd.DataFrame        # source, pulled, quarantined
    outbox: pd.DataFrame      # source, status, count
    competency_names: dict[str, str] = field(default_factory=dict)


def _bounds(start: date | None, end: date | None, zone: str) -> tuple[datetime | None, datetime | None]:
    tz = ZoneInfo(zone)
    lo = datetime.combine(start, time(), tz).astimezone(timezone.utc) if start else None
    hi = datetime.combine(end + timedelta(days=1), time(), tz).astimezone(timezone.utc) if end else None
    return lo, hi


def vendor_sources(settings: Settings) -> dict[str, str]:
    """vendor (as results carry it) -> source name (as runs carry it)."""
    out = {}
    for name, src in load_sources(settings).items():
        try:
            out.setdefault(MappingSpec.load(src.mapping).vendor, name)
        except HireSyncError:
            out.setdefault(name, name)
    return out


def load_facts(settings: Settings, start: date | None = None, end: date | None = None,
               department: str | None = None) -> Facts:
    lo, hi = _bounds(start, end, settings.timezone)
    r = InterviewResult
    when = func.coalesce(r.completed_at, r.started_at)
    conds = [r.interviewer.like("AI:%")]
    if lo:
        conds.append(when >= lo)
    if hi:
        conds.append(when < hi)
    if department is not None:
        conds.append(r.department == department)
    where = and_(*conds)
    resolve = competency_resolver(settings)
    names: dict[str, str] = {}
    with transaction(settings.hub_url) as s:
        results = pd.DataFrame(s.execute(select(
            r.id, r.candidate_id, r.vendor, r.position_code, r.position_name, r.department,
            func.coalesce(r.completed_at, r.started_at), r.status).where(where)).all(), columns=RESULT_COLUMNS)
        events = pd.DataFrame(s.execute(select(StatusEvent.result_id, StatusEvent.stage, StatusEvent.occurred_at)
                                        .join(r, r.id == StatusEvent.result_id).where(where)).all(),
                              columns=["result_id", "stage", "occurred_at"])
        dims = s.execute(select(r.candidate_id, r.position_code, r.vendor, DimensionScore.code, DimensionScore.name,
                                DimensionScore.score, when, r.id)
                         .join(r, r.id == DimensionScore.result_id).where(where)).all()
        ratings = _ratings(s, settings)
        run_conds = []
        if lo:
            run_conds.append(Run.started_at >= lo)
        if hi:
            run_conds.append(Run.started_at < hi)
        runs = pd.DataFrame(s.execute(select(Run.source, Run.pulled, Run.quarantined).where(*run_conds)).all(),
                            columns=["source", "pulled", "quarantined"])
        box = s.execute(select(r.vendor, Outbox.status, func.count()).join(r, r.id == Outbox.result_id)
                        .where(where).group_by(r.vendor, Outbox.status)).all()
    for col in ("completed_at",):
        results[col] = pd.to_datetime(results[col], utc=True)
    events["occurred_at"] = pd.to_datetime(events["occurred_at"], utc=True)
    rows = []
    for cand, pos, vendor, code, name, score, at, rid in dims:
        comp, comp_name = resolve(vendor, code, name)
        names[comp] = comp_name
        rows.append((cand, pos, comp, score, at, rid))
    scores = pd.DataFrame(rows, columns=["candidate_id", "position_code", "competency", "score", "at", "result_id"])
    # Later performance is performance in the job the person was hired into: only hired results count.
    scores = scores[scores["result_id"].isin(set(events.loc[events["stage"].eq("hired"), "result_id"]))]
    if not scores.empty:  # the latest result per candidate, position and competency
        scores = (scores.sort_values(["at", "result_id"]).groupby(["candidate_id", "position_code", "competency"])
                  .tail(1).drop(columns=["at", "result_id"]).reset_index(drop=True))
    else:
        scores = scores.drop(columns=["at", "result_id"])
    by_source = vendor_sources(settings)
    outbox = pd.DataFrame([(by_source.get(v, v), st, n) for v, st, n in box], columns=["source", "status", "count"])
    if department is not None:  # a department's view: runs are not per department
        runs = runs.iloc[0:0]
    return Facts(results, events, scores, ratings, runs, outbox, names)


def _ratings(s, settings: Settings) -> pd.DataFrame:
    """Performance ratings (绩效) per candidate and period, decrypted here for the correlation only."""
    if not s.scalar(select(func.count()).select_from(PerformanceRating)):
        return pd.DataFrame(columns=["candidate_id", "rating"])
    from hiresync.privacy.keys import hub_keys

    rows = ratings_by_candidate(s, hub_keys(settings))
    return pd.DataFrame([(c, r) for c, _, r in rows], columns=["candidate_id", "rating"])

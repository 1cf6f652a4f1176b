"""The HR analytics, as pure functions over small tables (pandas DataFrames) so that each one can
be checked on a hand-made data set; `hiresync.report.facts` reads those tables from the hub.

Definitions (what the report's Chinese labels mean):
- AI results are results whose interviewer is an AI ("AI: <vendor>"); a department's own
  re-interview sheet is not an AI decision.
- pass rate = results with status `passed` / all AI results of the group (pending and incomplete
  count in the denominator: they did not pass).
- funnel, over AI-passed results: AI passed (at the interview's completion) -> re-interview (first
  `reinterview_requested` or `reinterviewed` event) -> offer -> hired. A result counts at a step only
  if it reached every earlier step; conversion = count at the step / count at the step before;
  days between steps: the median over results that reached both.
- AI decision against the outcome: of AI-passed results, the share hired; of AI-failed results that
  a person reviewed (any workflow event after the AI's decision), the share overturned (the person
  let the candidate go on: re-interviewed, offer or hired).
- competency vs performance: per position and competency, Spearman's rank correlation between the
  competency score of the AI result that led to the hire (`hired` in the status history) and the
  person's mean
  performance rating, with n and a 95% confidence interval (Fisher z, standard error
  sqrt(1.06 / (n - 3)), Fieller-Hartley-Pearson 1957). Below MIN_N pairs it is "样本不足": no
  coefficient is given, only n.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

MIN_N = 30
INSUFFICIENT = "样本不足"
REINTERVIEW_STAGES = ("reinterview_requested", "reinterviewed")
OVERTURN_STAGES = ("reinterviewed", "offer", "hired")
FUNNEL = (("ai_passed", "AI 面试通过"), ("reinterview", "复试"), ("offer", "录用通知"), ("hired", "入职"))

# results: result_id, candidate_id, vendor, position_code, position_name, department, completed_at (tz-aware UTC), status
# events: result_id, stage, occurred_at (tz-aware UTC)


def pass_rates(results: pd.DataFrame, by: str, time_zone: str = "Asia/Shanghai") -> pd.DataFrame:
    """Volume and AI pass rate per `by` (vendor, position_code, department, or "week")."""
    df = results.copy()
    if by == "week":
        local = pd.to_datetime(df["completed_at"], utc=True).dt.tz_convert(time_zone)
        iso = local.dt.isocalendar()
        df["week"] = iso["year"].astype(str) + "-W" + iso["week"].astype(int).map("{:02d}".format)
    df["passed"] = df["status"].eq("passed")
    out = df.groupby(by, dropna=False).agg(volume=("status", "size"), passed=("passed", "sum")).reset_index()
    out["pass_rate"] = out["passed"] / out["volume"]
    if by == "position_code" and "position_name" in df:
        names = df.dropna(subset=["position_name"]).groupby("position_code")["position_name"].first()
        out.insert(1, "position_name", out["position_code"].map(names))
    return out.sort_values(by).reset_index(drop=True)


def _stage_times(results: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """One row per AI-passed result: the time it reached each funnel step (NaT: not reached)."""
    passed = results[results["status"].eq("passed")][["result_id", "completed_at"]].rename(
        columns={"completed_at": "ai_passed"}).set_index("result_id")
    ev = events[events["stage"].ne("ai_passed")].copy()  # the AI's pass is the interview itself
    ev["step"] = ev["stage"].where(~ev["stage"].isin(REINTERVIEW_STAGES), "reinterview")
    first = ev.groupby(["result_id", "step"])["occurred_at"].min().unstack()
    out = passed.join(first, how="left")
    for step, _ in FUNNEL:
        if step not in out:
            out[step] = pd.NaT
        out[step] = pd.to_datetime(out[step], utc=True)
    # a step counts only after every earlier one
    reached = pd.Series(True, index=out.index)
    for step, _ in FUNNEL:
        reached &= out[step].notna()
        out[step] = out[step].where(reached)
    return out[[s for s, _ in FUNNEL]]


def funnel(results: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """step, label, count, conversion from the step before, median days since the step before."""
    times = _stage_times(results, events)
    rows, prev = [], None
    for step, label in FUNNEL:
        count = int(times[step].notna().sum())
        row = {"step": step, "label": label, "count": count, "conversion": None, "median_days": None}
        if prev is not None:
            before = int(times[prev].notna().sum())
            row["conversion"] = count / before if before else None
            both = times[times[step].notna() & times[prev].notna()]
            if len(both):
                row["median_days"] = float(((both[step] - both[prev]).dt.total_seconds() / 86400).median())
        rows.append(row)
        prev = step
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class DecisionOutcome:
    ai_passed: int
    ai_passed_hired: int
    ai_failed: int
    ai_failed_reviewed: int
    ai_failed_overturned: int

    @property
    def hired_share(self) -> float | None:
        return self.ai_passed_hired / self.ai_passed if self.ai_passed else None

    @property
    def overturned_share(self) -> float | None:
        return self.ai_failed_overturned / self.ai_failed_reviewed if self.ai_failed_reviewed else None


def decision_vs_outcome(results: pd.DataFrame, events: pd.DataFrame) -> DecisionOutcome:
    passed = set(results.loc[results["status"].eq("passed"), "result_id"])
    failed = set(results.loc[results["status"].eq("failed"), "result_id"])
    later = events[events["stage"].ne("ai_passed")]
    hired = set(later.loc[later["stage"].eq("hired"), "result_id"])
    reviewed = set(later["result_id"]) & failed
    overturned = set(later.loc[later["stage"].isin(OVERTURN_STAGES), "result_id"]) & failed
    return DecisionOutcome(len(passed), len(passed & hired), len(failed), len(reviewed), len(overturned))


@dataclass(frozen=True)
class Correlation:
    position_code: str
    competency: str
    n: int
    rho: float | None       # None below MIN_N: not a finding
    ci_low: float | None
    ci_high: float | None

    @property
    def verdict(self) -> str:
        return INSUFFICIENT if self.rho is None else f"{self.rho:.2f}"


def spearman(x, y) -> float:
    """Spearman's rho: Pearson's correlation of the ranks (ties get their average rank)."""
    rx, ry = pd.Series(list(x)).rank(), pd.Series(list(y)).rank()
    return float(rx.corr(ry))


def confidence_interval(rho: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n <= 3 or abs(rho) >= 1:
        return (rho, rho)
    se = math.sqrt(1.06 / (n - 3))
    centre = math.atanh(rho)
    return math.tanh(centre - z * se), math.tanh(centre + z * se)


def competency_correlations(scores: pd.DataFrame, ratings: pd.DataFrame, min_n: int = MIN_N) -> list[Correlation]:
    """scores: candidate_id, position_code, competency, score (one per candidate, position and
    competency: the latest); ratings: candidate_id, rating (all periods; the mean is used)."""
    if scores.empty or ratings.empty:
        return []
    perf = ratings.groupby("candidate_id")["rating"].mean().rename("rating")
    pairs = scores.join(perf, on="candidate_id", how="inner")
    out = []
    for (position, competency), g in pairs.groupby(["position_code", "competency"]):
        n = len(g)
        if n < min_n or g["score"].nunique() < 2 or g["rating"].nunique() < 2:
            out.append(Correlation(position, competency, n, None, None, None))
            continue
        rho = spearman(g["score"], g["rating"])
        low, high = confidence_interval(rho, n)
        out.append(Correlation(position, competency, n, rho, low, high))
    return out


def data_health(runs: pd.DataFrame, outbox: pd.DataFrame) -> pd.DataFrame:
    """runs: source, pulled, quarantined; outbox: source, status (pending / sent / dead), count.
    Per source: pulled, quarantined, quarantine share, deliveries pending / sent / dead."""
    agg = runs.groupby("source")[["pulled", "quarantined"]].sum() if not runs.empty else pd.DataFrame(
        columns=["pulled", "quarantined"])
    box = (outbox.pivot_table(index="source", columns="status", values="count", aggfunc="sum", fill_value=0)
           if not outbox.empty else pd.DataFrame())
    out = agg.join(box, how="outer").fillna(0)
    for col in ("pending", "sent", "dead"):
        if col not in out:
            out[col] = 0
    out = out[["pulled", "quarantined", "pending", "sent", "dead"]].astype(int)
    out["quarantine_share"] = pd.Series([q / p if p else None for q, p in zip(out["quarantined"], out["pulled"])],
                                        index=out.index, dtype=object)
    return out.reset_index(names="source").sort_values("source").reset_index(drop=True)


def correlation_pairs(scores: pd.DataFrame, ratings: pd.DataFrame, position: str, competency: str) -> list[tuple]:
    """(competency score, mean rating) per candidate: the points of one scatter plot."""
    if scores.empty or ratings.empty:
        return []
    perf = ratings.groupby("candidate_id")["rating"].mean().rename("rating")
    g = scores[(scores["position_code"] == position) & (scores["competency"] == competency)].join(
        perf, on="candidate_id", how="inner")
    return [(float(s), float(r)) for s, r in zip(g["score"], g["rating"])]

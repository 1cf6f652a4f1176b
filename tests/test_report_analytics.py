"""The HR analytics on small hand-made data sets whose right answers are known by hand, and the
same numbers read back from a real hub (SQLite, PostgreSQL, MariaDB)."""

from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest
from scipy import stats

from hiresync.hub.models import Candidate, DimensionScore, InterviewResult, Outbox, Run, StatusEvent
from hiresync.hub.store import transaction
from hiresync.report import analytics as a
from tests.helpers import digest
from hiresync.report.facts import load_facts

UTC = timezone.utc
T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Beijing, ISO week 2026-W45


def _results() -> pd.DataFrame:
    rows = [  # id, candidate, vendor, position, department, completed, status
        (1, 1, "aiview", "P-RD-001", "研发中心", T0, "passed"),
        (2, 2, "aiview", "P-RD-001", "研发中心", T0 + timedelta(days=1), "passed"),
        (3, 3, "aiview", "P-RD-001", "研发中心", T0 + timedelta(days=2), "failed"),
        (4, 4, "zhiping", "P-RD-001", "研发中心", T0 + timedelta(days=7), "passed"),
        (5, 5, "zhiping", "P-SA-001", "销售部", T0 + timedelta(days=7), "failed"),
        (6, 6, "zhiping", "P-SA-001", "销售部", T0 + timedelta(days=8), "failed"),
        (7, 7, "zhiping", "P-SA-001", "销售部", T0 + timedelta(days=8), "pending_review"),
        (8, 8, "aiview", "P-SA-001", "销售部", T0 + timedelta(days=9), "passed"),
    ]
    df = pd.DataFrame(rows, columns=["result_id", "candidate_id", "vendor", "position_code", "department",
                                     "completed_at", "status"])
    df["position_name"] = df["position_code"].map({"P-RD-001": "后端开发工程师", "P-SA-001": "销售代表"})
    return df


def _events() -> pd.DataFrame:
    d = timedelta(days=1)
    rows = [  # result, stage, when
        (1, "ai_passed", T0 + 0.1 * d), (1, "reinterview_requested", T0 + 2 * d), (1, "reinterviewed", T0 + 5 * d),
        (1, "offer", T0 + 9 * d), (1, "hired", T0 + 20 * d),
        (2, "ai_passed", T0 + 1.1 * d), (2, "reinterview_requested", T0 + 5 * d), (2, "offer", T0 + 15 * d),
        (4, "reinterview_requested", T0 + 11 * d),
        (8, "offer", T0 + 12 * d),                       # no re-interview: counts at no later step
        (3, "reinterviewed", T0 + 4 * d),                # AI failed, a person overturned it
        (5, "rejected", T0 + 10 * d),                    # AI failed, a person reviewed and agreed
    ]
    return pd.DataFrame(rows, columns=["result_id", "stage", "occurred_at"])


def test_volume_and_pass_rate_per_vendor_position_department_and_week():
    res = _results()
    by_vendor = a.pass_rates(res, "vendor").set_index("vendor")
    assert by_vendor.loc["aiview", "volume"] == 4 and by_vendor.loc["aiview", "pass_rate"] == 0.75
    assert by_vendor.loc["zhiping", "volume"] == 4 and by_vendor.loc["zhiping", "pass_rate"] == 0.25
    by_pos = a.pass_rates(res, "position_code").set_index("position_code")
    assert by_pos.loc["P-RD-001", "pass_rate"] == 0.75 and by_pos.loc["P-RD-001", "position_name"] == "后端开发工程师"
    assert a.pass_rates(res, "department").set_index("department").loc["销售部", "pass_rate"] == 0.25
    weeks = a.pass_rates(res, "week").set_index("week")
    assert weeks["volume"].to_dict() == {"2026-W45": 3, "2026-W46": 5}
    assert weeks.loc["2026-W46", "pass_rate"] == 2 / 5


def test_the_week_is_the_group_time_zone_s_week():
    # Sunday 20:00 UTC is Monday 04:00 in Beijing: the next ISO week there.
    res = pd.DataFrame([(1, "passed", datetime(2026, 11, 8, 20, 0, tzinfo=UTC))],
                       columns=["result_id", "status", "completed_at"])
    assert a.pass_rates(res, "week")["week"].tolist() == ["2026-W46"]
    assert a.pass_rates(res, "week", time_zone="UTC")["week"].tolist() == ["2026-W45"]


def test_funnel_conversion_and_median_days_between_steps():
    f = a.funnel(_results(), _events()).set_index("step")
    assert f["count"].to_dict() == {"ai_passed": 4, "reinterview": 3, "offer": 2, "hired": 1}
    assert f.loc["reinterview", "conversion"] == 3 / 4 and f.loc["offer", "conversion"] == 2 / 3
    assert f.loc["hired", "conversion"] == 1 / 2
    # AI passed -> re-interview: result 1 2 days, result 2 4 days, result 4 4 days -> median 4
    assert f.loc["reinterview", "median_days"] == pytest.approx(4.0)
    # re-interview -> offer: result 1 7 days (from the request on day 2), result 2 10 days -> 8.5
    assert f.loc["offer", "median_days"] == pytest.approx(8.5)
    assert f.loc["hired", "median_days"] == pytest.approx(11.0)
    assert f.loc["ai_passed", "label"] == "AI 面试通过"


def test_ai_decision_against_the_outcome():
    o = a.decision_vs_outcome(_results(), _events())
    assert (o.ai_passed, o.ai_passed_hired, o.hired_share) == (4, 1, 0.25)
    assert (o.ai_failed, o.ai_failed_reviewed, o.ai_failed_overturned, o.overturned_share) == (3, 2, 1, 0.5)
    empty = a.decision_vs_outcome(_results().iloc[0:0], _events().iloc[0:0])
    assert empty.hired_share is None and empty.overturned_share is None


def test_spearman_and_its_interval_agree_with_scipy_and_need_thirty_pairs():
    rng = random.Random(7)
    n = 40
    scores = [round(rng.uniform(40, 100)) for _ in range(n)]  # rounded: ties on both sides
    ratings = [min(5, max(1, round(s / 20 + rng.gauss(0, 0.8)))) for s in scores]
    df = pd.DataFrame({"candidate_id": range(n), "position_code": "P-SA-001", "competency": "communication",
                       "score": scores})
    perf = pd.DataFrame({"candidate_id": range(n), "rating": ratings})
    [c] = a.competency_correlations(df, perf)
    expected = stats.spearmanr(scores, ratings).statistic
    assert c.n == n and c.rho == pytest.approx(expected, abs=1e-12)
    se = math.sqrt(1.06 / (n - 3))
    assert c.ci_low == pytest.approx(math.tanh(math.atanh(expected) - 1.959964 * se))
    assert c.ci_high == pytest.approx(math.tanh(math.atanh(expected) + 1.959964 * se))
    assert c.ci_low < c.rho < c.ci_high and c.verdict == f"{expected:.2f}"

    [few] = a.competency_correlations(df.head(29), perf)
    assert (few.n, few.rho, few.ci_low, few.verdict) == (29, None, None, "样本不足")


def test_the_mean_rating_of_a_candidate_is_used():
    df = pd.DataFrame({"candidate_id": [1, 2, 3], "position_code": "P", "competency": "c", "score": [10, 20, 30]})
    perf = pd.DataFrame({"candidate_id": [1, 1, 2, 3], "rating": [1, 5, 2, 4]})  # means 3, 2, 4
    [c] = a.competency_correlations(df, perf, min_n=3)
    assert c.rho == pytest.approx(stats.spearmanr([10, 20, 30], [3, 2, 4]).statistic)


def test_data_health_per_source():
    runs = pd.DataFrame([("aiview", 100, 5), ("aiview", 50, 10), ("zhiping", 0, 0)],
                        columns=["source", "pulled", "quarantined"])
    box = pd.DataFrame([("aiview", "sent", 130), ("aiview", "dead", 2), ("zhiping", "pending", 7)],
                       columns=["source", "status", "count"])
    h = a.data_health(runs, box).set_index("source")
    assert h.loc["aiview", "quarantine_share"] == pytest.approx(0.1)
    assert (h.loc["aiview", "sent"], h.loc["aiview", "dead"], h.loc["aiview", "pending"]) == (130, 2, 0)
    assert h.loc["zhiping", "quarantine_share"] is None and h.loc["zhiping", "pending"] == 7


def seed_hub(url: str) -> None:
    """The hand-made data set above, as hub rows (personal columns hold placeholders)."""
    with transaction(url) as s:
        for cid in range(1, 9):
            s.add(Candidate(id=cid, candidate_key=f"c{cid}", key_version=1, full_name_enc="v1:eA==", full_name_masked="x",
                            national_id_enc="v1:eA==", national_id_bidx=digest(f"b{cid}"), national_id_masked="x"))
        s.flush()
        for r in _results().itertuples():
            s.add(InterviewResult(id=r.result_id, vendor=r.vendor, vendor_result_id=str(r.result_id),
                                  candidate_id=r.candidate_id, position_code=r.position_code,
                                  position_name=r.position_name, department=r.department,
                                  started_at=r.completed_at.to_pydatetime() - timedelta(minutes=30),
                                  completed_at=r.completed_at.to_pydatetime(), status=r.status,
                                  interviewer=f"AI: {r.vendor}", source_updated_at=T0, mapping_version="1",
                                  content_hash=digest("h"), first_run_id="run", last_run_id="run"))
        # a department's re-interview is not an AI result
        s.add(InterviewResult(id=99, vendor="dept_reinterview", vendor_result_id="x#1", candidate_id=1,
                              position_code="P-RD-001", department="研发中心", started_at=T0, completed_at=T0,
                              status="passed", interviewer="业务部门复试", source_updated_at=T0, mapping_version="1",
                              content_hash=digest("h"), first_run_id="run", last_run_id="run"))
        s.flush()
        for i, e in enumerate(_events().itertuples()):
            s.add(StatusEvent(result_id=e.result_id, candidate_id=e.result_id, stage=e.stage, origin="grouphr",
                              external_id=str(i), occurred_at=e.occurred_at.to_pydatetime()))
        s.add(DimensionScore(result_id=1, seq=0, code="communication", name="沟通表达", score=80))
        s.add(Run(id="r1", source="aiview", status="success", started_at=T0, pulled=100, quarantined=5))
        s.add(Outbox(target="ehr", result_id=1, result_version=1, idempotency_key=digest("k1"), status="sent", run_id="r1"))


def test_the_same_numbers_from_the_hub(settings):
    seed_hub(settings.hub_url)
    facts = load_facts(settings)
    assert sorted(facts.results["result_id"]) == list(range(1, 9))  # not the department's re-interview
    f = a.funnel(facts.results, facts.events).set_index("step")
    assert f["count"].to_dict() == {"ai_passed": 4, "reinterview": 3, "offer": 2, "hired": 1}
    assert f.loc["offer", "median_days"] == pytest.approx(8.5)
    assert a.decision_vs_outcome(facts.results, facts.events).overturned_share == 0.5
    assert facts.scores.to_dict("records") == [{"candidate_id": 1, "position_code": "P-RD-001",
                                                "competency": "communication", "score": 80.0}]
    assert facts.competency_names["communication"] == "沟通能力"
    h = a.data_health(facts.runs, facts.outbox).set_index("source")
    assert h.loc["aiview", "quarantine_share"] == 0.05 and h.loc["aiview", "sent"] == 1

    # a period (Beijing dates) and a department
    week46 = load_facts(settings, start=date(2026, 11, 9), end=date(2026, 11, 15))
    assert sorted(week46.results["result_id"]) == [4, 5, 6, 7, 8]
    sales = load_facts(settings, department="销售部")
    assert set(sales.results["department"]) == {"销售部"} and sales.runs.empty
    assert load_facts(settings, start=date(2027, 1, 1)).results.empty

"""A fourth vendor, connected as an integrator would from the README: NovoHire (tests/fixtures/novohire),
API key in a header, offset paging, a code/message/data envelope and epoch-millisecond times
(`modifiedTime: 1764052200000`), served by simulators.feed.EnvelopedFeedSimulator over real HTTP.
Synced end to end with run_source on every hub database; the version guard follows modifiedTime."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone

import pytest
import yaml
from sqlalchemy import select

from connectors.errors import SourceAuthError
from connectors.targets.ehr_sql import ehr_interview_results
from hiresync.config.settings import Settings
from hiresync.hub.models import InterviewResult, RecordLineage, Watermark
from hiresync.hub.store import engine_for, transaction
from hiresync.pipeline.runner import run_source
from simulators.feed import EnvelopedFeedSimulator
from tests.helpers import REPO, connect, leaks

FIXTURES = REPO / "tests/fixtures/novohire"


@pytest.fixture
def novohire(settings, tmp_path, monkeypatch):
    sources = tmp_path / "sources.yaml"
    sources.write_text(yaml.safe_dump({"sources": {"novohire": {
        "profile": str(FIXTURES / "profile.yaml"), "mapping": str(FIXTURES / "mapping.yaml"),
        "schedule": "*/30 * * * *", "targets": ["ehr"]}}}), encoding="utf-8")
    with EnvelopedFeedSimulator(count=60) as sim:
        connect(monkeypatch, sim, "hiresync_novohire")
        yield sim, dataclasses.replace(settings, sources_file=sources)


def _hub_result(settings, rid: str) -> InterviewResult:
    with transaction(settings.hub_url) as s:
        row = s.scalars(select(InterviewResult).where(InterviewResult.vendor == "novohire",
                                                      InterviewResult.vendor_result_id == rid)).one()
        s.expunge(row)
        return row


def _ehr_score(settings, rid: str) -> float:
    with engine_for(settings.ehr_url).connect() as conn:
        return conn.scalar(select(ehr_interview_results.c.overall_score)
                           .where(ehr_interview_results.c.result_key == f"novohire:{rid}"))


def _ms(moment: datetime) -> int:
    """Epoch milliseconds of a hub datetime (naive ones are UTC)."""
    return round((moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp() * 1000)


def _personal(sim) -> set[str]:
    values = set()
    for r in sim.rows:
        c = r["candidate"]
        values |= {c["fullName"], c["idNumber"], c["idNumber"].replace(" ", ""), c["phone"], c["email"]}
    return values


def test_novohire_syncs_end_to_end_and_the_version_guard_follows_modified_time(novohire):
    sim, settings = novohire
    first = run_source("novohire", settings)
    assert first["status"] == "success", first
    assert first["pulled"] == 60 and first["inserted"] == 60 and first["quarantined"] == 0
    assert first["delivered"] == 60

    rid = sim.rows[10]["resultId"]
    original = sim.row(rid)
    stored = _hub_result(settings, rid)
    assert _ms(stored.source_updated_at) == original["modifiedTime"]
    assert stored.score_scale == 10 and stored.overall_score == pytest.approx(original["totalScore"] * 10)
    assert "\n" in stored.ai_comment and "，" in stored.ai_comment   # free_text kept the line break
    newest_ms = max(r["modifiedTime"] for r in sim.rows)
    with transaction(settings.hub_url) as s:
        mark = s.get(Watermark, "novohire").cursor_value
    assert _ms(mark) == newest_ms

    # The vendor re-scores it (newer modifiedTime, new score) -> updated in the hub and the EHR; a
    # later re-score of another result moves the watermark past the overlap window of the first.
    other = sim.rows[20]["resultId"]
    sim.rescore(rid, 9.9, newest_ms + 60_000)
    sim.rescore(other, 0.5, newest_ms + 20 * 60_000)
    second = run_source("novohire", settings)
    assert second["status"] == "success" and second["updated"] == 2, second
    assert _hub_result(settings, rid).overall_score == 99.0 and _ehr_score(settings, rid) == 99.0

    # A backfill re-publishes the OLD version (older modifiedTime, other score): it never wins.
    sim.resend_stale(rid, 1.0, original["modifiedTime"])
    third = run_source("novohire", settings)
    assert third["status"] == "success", third
    assert third["updated"] == 0 and third["inserted"] == 0
    assert _hub_result(settings, rid).overall_score == 99.0 and _ehr_score(settings, rid) == 99.0
    with transaction(settings.hub_url) as s:
        outcomes = list(s.scalars(select(RecordLineage.outcome).where(
            RecordLineage.run_id == third["run_id"], RecordLineage.vendor_result_id == rid)))
    assert outcomes == ["stale"]
    assert leaks(json.dumps([first, second, third], ensure_ascii=False), _personal(sim)) == []


def test_novohire_wrong_key_fails_as_a_credentials_error_without_the_key(novohire, monkeypatch):
    sim, settings = novohire
    connect(monkeypatch, sim, "hiresync_novohire", password="wrong-key-123")
    with pytest.raises(SourceAuthError) as err:
        run_source("novohire", settings)
    text = str(err.value)
    assert "novohire" in text and "wrong-key-123" not in text and "novo-key" not in text
    with transaction(settings.hub_url) as s:
        assert s.get(Watermark, "novohire") is None


def test_the_fixture_is_not_a_demo_source():
    demo = yaml.safe_load((REPO / "sources.yaml").read_text(encoding="utf-8"))["sources"]
    assert "novohire" not in demo
    Settings.from_env  # the fixture's settings come from the usual Settings

"""Fault tests against the vendor simulators, through the whole pipeline (run_source) and the hub:
429/503 with Retry-After, 5xx bursts beyond the budget, cut-off bodies, tokens expiring mid-run,
a crash between two pages that share an update time, rows moving between pages during a run, and
a fourth vendor added from YAML files alone."""

from __future__ import annotations

import dataclasses
import json
import types
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from connectors.connection import ConnectionSettings
from connectors.errors import SourceResponseError, SourceUnavailable
from connectors.rest.profile import RestProfile
from connectors.rest.source import RestSource
from connectors.targets.ehr_sql import ehr_interview_results
from hiresync.hub.models import InterviewResult, Outbox, RecordLineage, Run, Watermark
from hiresync.hub.store import engine_for, transaction
from hiresync.pipeline.runner import run_source
from hiresync.config.settings import Settings
from simulators.aiview import AIViewSimulator
from simulators.zhiping import LIST_PATH, ZhiPingSimulator
from tests.helpers import REPO, connect

AIVIEW_PATH = "/v1/interview-results"
RETRIES = 2  # every test profile: 3 attempts per request


def profile_copy(tmp_path: Path, name: str, **changes) -> Path:
    """A repository profile with tiny backoffs (tests must not sleep) and the given changes."""
    doc = yaml.safe_load((REPO / f"connectors/profiles/{name}.yaml").read_text(encoding="utf-8"))
    doc["limits"] = {"max_retries": RETRIES, "backoff_factor": 0.001}
    for dotted, value in changes.items():
        node = doc
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def with_sources(settings: Settings, tmp_path: Path, **sources: dict) -> Settings:
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump({"sources": sources}), encoding="utf-8")
    return dataclasses.replace(settings, sources_file=path)


def aiview_settings(settings, tmp_path, **changes) -> Settings:
    return with_sources(settings, tmp_path, aiview={
        "profile": str(profile_copy(tmp_path, "aiview", **changes)), "mapping": "mappings/aiview.yaml"})


def zhiping_settings(settings, tmp_path, **changes) -> Settings:
    return with_sources(settings, tmp_path, zhiping={
        "profile": str(profile_copy(tmp_path, "zhiping", **changes)), "mapping": "mappings/zhiping.yaml"})


def hub_count(settings, model, *where) -> int:
    with transaction(settings.hub_url) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def watermark(settings, source: str) -> datetime | None:
    with transaction(settings.hub_url) as s:
        mark = s.get(Watermark, source)
        return mark.cursor_value if mark else None


def delivered_once(settings, vendor: str) -> Counter:
    """How many outbox rows (deliveries) each stored result of the vendor has."""
    with transaction(settings.hub_url) as s:
        rows = s.execute(select(InterviewResult.vendor_result_id, func.count(Outbox.id))
                         .join(Outbox, Outbox.result_id == InterviewResult.id)
                         .where(InterviewResult.vendor == vendor)
                         .group_by(InterviewResult.vendor_result_id)).all()
    return Counter(dict(rows))


def ehr_keys(settings) -> list[str]:
    with engine_for(settings.ehr_url).connect() as conn:
        return list(conn.scalars(select(ehr_interview_results.c.result_key)))


@pytest.fixture
def zhiping(monkeypatch):
    with ZhiPingSimulator(count=250, seed=13, defect_rate=0.03) as sim:
        connect(monkeypatch, sim, "hiresync_zhiping")
        yield sim


@pytest.fixture
def retry_sleeps(monkeypatch):
    """What urllib3's Retry asked to sleep (Retry-After or backoff), without sleeping."""
    import urllib3.util.retry as retry_module

    slept: list[float] = []
    real = retry_module.time
    monkeypatch.setattr(retry_module, "time", types.SimpleNamespace(
        sleep=slept.append, time=real.time, monotonic=real.monotonic))
    return slept


# -- rate limits and outages ---------------------------------------------------------------------
@pytest.mark.parametrize("status", [429, 503])
def test_429_and_503_with_retry_after_are_honoured_and_the_run_goes_on(sqlite_settings, tmp_path, aiview,
                                                                        retry_sleeps, status):
    settings = aiview_settings(sqlite_settings, tmp_path, **{"stream.params": {"limit": 100}})
    aiview.fail(AIVIEW_PATH, status, count=2, skip=1, retry_after=7)  # the 2nd page, twice

    summary = run_source("aiview", settings)

    assert summary["status"] == "success" and summary["pulled"] == len(aiview)
    assert retry_sleeps.count(7) == 2  # the vendor's Retry-After, not our backoff
    assert aiview.faults_pending == 0 and aiview.requests[AIVIEW_PATH] == -(-len(aiview) // 100) + 2


def test_a_5xx_burst_beyond_the_retry_budget_fails_the_run_and_the_watermark_stays(settings, tmp_path, zhiping):
    settings = zhiping_settings(settings, tmp_path)
    first = run_source("zhiping", settings)
    mark = watermark(settings, "zhiping")
    assert first["status"] == "success" and mark is not None

    rescored = zhiping.rescore(n=5)
    zhiping.fail(LIST_PATH, 502, count=RETRIES + 1)  # one more than the budget
    with pytest.raises(SourceUnavailable) as err:
        run_source("zhiping", settings, run_id="zhiping__burst")
    assert str(err.value) == "source 'zhiping': GET /open/v1/interview/list: HTTP 502 after the retry budget"
    with transaction(settings.hub_url) as s:
        run = s.get(Run, "zhiping__burst")
        assert run.status == "failed" and "HTTP 502 after the retry budget" in run.error
    assert watermark(settings, "zhiping") == mark
    assert hub_count(settings, RecordLineage, RecordLineage.run_id == "zhiping__burst") == 0

    again = run_source("zhiping", settings)  # the vendor is back: the next run picks up the changes
    assert again["updated"] == 5 and watermark(settings, "zhiping") > mark
    assert sorted(rescored) == sorted(k for k, n in delivered_once(settings, "zhiping").items() if n == 2)


def test_a_cut_off_json_body_is_retried_and_never_half_written(sqlite_settings, tmp_path, zhiping):
    settings = zhiping_settings(sqlite_settings, tmp_path)

    zhiping.truncate(LIST_PATH, count=RETRIES + 1, skip=1)  # page 2 cut off on every attempt
    with pytest.raises(SourceResponseError) as err:
        run_source("zhiping", settings, run_id="zhiping__cut")
    assert "not valid JSON" in str(err.value) and f"{RETRIES + 1} attempts" in str(err.value)
    staged = settings.staging_dir / "zhiping__cut"
    assert not (staged / "raw.enc").exists() and not (staged / "manifest.json").exists()
    assert hub_count(settings, RecordLineage) == 0 and watermark(settings, "zhiping") is None

    zhiping.truncate(LIST_PATH, count=RETRIES, skip=1)  # within the budget this time
    summary = run_source("zhiping", settings)
    assert summary["status"] == "success" and zhiping.faults_pending == 0
    assert summary["pulled"] == len(zhiping) == hub_count(settings, RecordLineage)
    assert summary["inserted"] + summary["quarantined"] == len(zhiping)


# -- tokens ------------------------------------------------------------------------------------------
def test_an_access_token_revoked_mid_run_is_refreshed_and_the_run_goes_on(sqlite_settings, tmp_path, aiview):
    settings = aiview_settings(sqlite_settings, tmp_path, **{"stream.params": {"limit": 60}})
    aiview.before(AIVIEW_PATH, aiview.revoke_tokens, skip=2)  # the 3rd page meets an expired token

    summary = run_source("aiview", settings)

    assert summary["status"] == "success" and summary["pulled"] == len(aiview)
    assert aiview.requests["/oauth/token"] == 2
    assert aiview.requests[AIVIEW_PATH] == -(-len(aiview) // 60) + 1  # the refused page, asked again


def test_a_token_is_refreshed_before_it_expires(sqlite_settings, tmp_path, aiview):
    # A margin as long as the token's lifetime: every request finds the token "about to expire".
    settings = aiview_settings(sqlite_settings, tmp_path, **{"stream.params": {"limit": 100},
                                                              "auth.refresh_margin_seconds": aiview.token_ttl})
    summary = run_source("aiview", settings)
    pages = -(-len(aiview) // 100)
    assert summary["pulled"] == len(aiview)
    assert aiview.requests["/oauth/token"] == pages and aiview.requests[AIVIEW_PATH] == pages  # no 401 met


# -- ties and moving rows ------------------------------------------------------------------------------
@pytest.mark.parametrize("seek", [True, False])
def test_a_crash_between_two_pages_sharing_an_update_time_delivers_every_result_once(
        settings, tmp_path, monkeypatch, seek):
    with ZhiPingSimulator(count=250, seed=17, defect_rate=0.0, distinct_update_times=2) as sim:
        connect(monkeypatch, sim, "hiresync_zhiping")
        ties = Counter(r["update_time"] for r in sim.records())
        assert max(ties.values()) > 100  # one update time spans more than a page of 100
        settings = zhiping_settings(settings, tmp_path, **{"stream.incremental.seek": seek})

        sim.fail(LIST_PATH, 500, count=RETRIES + 1, skip=1)  # dies after page 1
        with pytest.raises(SourceUnavailable):
            run_source("zhiping", settings)
        assert watermark(settings, "zhiping") is None and hub_count(settings, InterviewResult) == 0

        summary = run_source("zhiping", settings)
        again = run_source("zhiping", settings)  # the watermark instant is read again: nothing new

    everyone = sorted(r["interview_id"] for r in sim.records())
    assert summary["inserted"] == 250 and again["inserted"] == again["updated"] == 0
    deliveries = delivered_once(settings, "zhiping")
    assert sorted(deliveries) == everyone and set(deliveries.values()) == {1}
    assert sorted(k.split(":", 1)[-1] for k in ehr_keys(settings)) == everyone


def test_seek_reads_every_row_when_rows_move_between_pages_during_a_run(tmp_path):
    """Page N of "since T" shifts when a row on an earlier page is updated (it moves to the end):
    plain page numbers then skip a row; seek does not."""
    def read(seek: bool) -> tuple[list[str], list[str]]:
        with ZhiPingSimulator(count=250, seed=19, defect_rate=0.0) as sim:
            profile = RestProfile.load(profile_copy(tmp_path, "zhiping", **{"stream.incremental.seek": seek}))
            source = RestSource(profile, ConnectionSettings("t", sim.url, sim.app_key, sim.app_secret))
            moved = [r["interview_id"] for r in sim.records()[10:13]]
            sim.before(LIST_PATH, lambda: sim.rescore(ids=moved), skip=1)  # after page 1 was read
            got = [r["interview_id"] for page in source.pages(profile.start) for r in page]
            return got, [r["interview_id"] for r in sim.records()]

    got, everyone = read(seek=True)
    assert set(got) == set(everyone) and len(got) == 250 + 3  # the 3 moved rows: old and new version
    got, everyone = read(seek=False)
    assert len(set(everyone) - set(got)) == 3  # what seek prevents: 3 rows never read


# -- a fourth vendor from YAML alone -------------------------------------------------------------------
def test_a_fourth_vendor_is_added_from_yaml_files_alone_and_syncs(settings, tmp_path, monkeypatch):
    """MD5-signed requests with page numbers and no total: new profile, mapping and sources file,
    no Python."""
    profile = yaml.safe_load((REPO / "connectors/profiles/zhiping.yaml").read_text(encoding="utf-8"))
    profile.update(source="kaomian", connection="hiresync_kaomian", description="KaoMian (考面), MD5-signed")
    profile["auth"] = {"type": "signed", "algorithm": "md5", "timestamp_param": "timestamp"}
    del profile["stream"]["paginator"]["total_path"]
    profile["limits"] = {"max_retries": 1, "backoff_factor": 0.001, "requests_per_minute": 6000}
    mapping = (REPO / "mappings/zhiping.yaml").read_text(encoding="utf-8")
    mapping = mapping.replace("mapping: zhiping", "mapping: kaomian").replace("vendor: zhiping", "vendor: kaomian")
    (tmp_path / "kaomian.yaml").write_text(yaml.safe_dump(profile, allow_unicode=True), encoding="utf-8")
    (tmp_path / "kaomian_mapping.yaml").write_text(mapping, encoding="utf-8")
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump({"sources": {"kaomian": {
        "profile": str(tmp_path / "kaomian.yaml"), "mapping": str(tmp_path / "kaomian_mapping.yaml"),
        "schedule": "0 * * * *", "targets": ["ehr"]}}}), encoding="utf-8")
    monkeypatch.setenv("HIRESYNC_SOURCES", str(tmp_path / "sources.yaml"))

    with ZhiPingSimulator(count=120, seed=23, sign_method="md5", defect_rate=0.05) as sim:
        connect(monkeypatch, sim, "hiresync_kaomian")
        summary = run_source("kaomian", Settings.from_env())

    assert summary["status"] == "success" and summary["pulled"] == 120
    assert summary["quarantined"] == len(sim.defects) and summary["inserted"] == 120 - len(sim.defects)
    assert summary["delivered"] == summary["inserted"]
    assert hub_count(settings, InterviewResult, InterviewResult.vendor == "kaomian") == summary["inserted"]
    with transaction(settings.hub_url) as s:
        scales = set(s.scalars(select(InterviewResult.score_scale).where(InterviewResult.vendor == "kaomian")))
    assert scales == {5}
    assert json.dumps(summary).count("kaomian") >= 1

"""Workflow events against the group HR simulator, on SQLite, PostgreSQL and MariaDB: rules in
workflow.yaml queue a re-interview request when a result becomes passed; the group HR system's
status changes come back into the hub's status history."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from hiresync.delivery import outbox as outbox_mod
from hiresync.cli import app
from hiresync.errors import ConfigError
from hiresync.hub.models import InterviewResult, Outbox, StatusEvent
from hiresync.hub.store import transaction
from hiresync.delivery.outbox import relay
from hiresync.delivery.outbox_admin import replay
from hiresync.privacy.pii import Keyring
from hiresync.pipeline.runner import run_source
from hiresync.config.settings import Settings
from hiresync.delivery.workflow import load_workflow, pull
from simulators.hrtargets import GroupHRSimulator
from tests.helpers import REPO, connect, leaks, personal_values


@pytest.fixture
def grouphr(settings, aiview, monkeypatch, tmp_path):
    """aiview delivers to the group HR system (a simulator); the repo's workflow.yaml."""
    sources = tmp_path / "sources.yaml"
    sources.write_text("sources:\n  aiview: {profile: connectors/profiles/aiview.yaml, mapping: mappings/aiview.yaml, "
                       "targets: [grouphr]}\n")
    monkeypatch.setenv("HIRESYNC_SOURCES", str(sources))
    outbox_mod.CIRCUITS.clear()
    with GroupHRSimulator() as sim:
        connect(monkeypatch, sim, "hiresync_grouphr")
        yield Settings.from_env(), sim
    outbox_mod.CIRCUITS.clear()


def hub_statuses(settings) -> dict[str, str]:
    with transaction(settings.hub_url) as s:
        return {f"{r.vendor}:{r.vendor_result_id}": r.status for r in s.execute(
            select(InterviewResult.vendor, InterviewResult.vendor_result_id, InterviewResult.status))}


def stages(settings, stage: str) -> list:
    with transaction(settings.hub_url) as s:
        return list(s.scalars(select(StatusEvent).where(StatusEvent.stage == stage).order_by(StatusEvent.id)))


def set_result(sim, result_id: str, result: str) -> None:
    """A new version of one AIView result with another pass/fail verdict (as rescore() does it)."""
    with sim._lock:
        record = json.loads(sim._bodies[sim._latest[result_id]])
        record["evaluation"]["result"] = result
        stamp = max(int(time.time()), sim._keys[-1][0] + 1)
        record["updated_at"] = datetime.fromtimestamp(stamp, timezone.utc).isoformat().replace("+00:00", "Z")
        sim._keys.append((stamp, result_id))
        sim._bodies.append(json.dumps(record, ensure_ascii=False).encode())
        sim._latest[result_id] = len(sim._keys) - 1


def test_a_passed_result_gets_exactly_one_reinterview_request_a_failed_one_none(grouphr):
    settings, sim = grouphr
    run_source("aiview", settings)
    statuses = hub_statuses(settings)
    passed = {k for k, v in statuses.items() if v == "passed"}
    assert passed and len(passed) < len(statuses)  # the data set has both
    assert sorted(e["externalKey"] for e in sim.events) == sorted(passed)  # one each, none for failed ones
    assert {e["eventType"] for e in sim.events} == {"REINTERVIEW_REQUEST"}
    requested = stages(settings, "reinterview_requested")
    assert len(requested) == len(passed) and {e.origin for e in requested} == {"hiresync"}
    assert len(stages(settings, "ai_passed")) == len(passed)

    # A re-run and a replay of everything sent: the same keys, nothing applied twice.
    run_source("aiview", settings)
    assert replay(settings, "grouphr") > len(passed)
    relay(settings, Keyring.load(settings.key_file), "grouphr")
    assert len(sim.events) == len(passed)
    assert len(stages(settings, "reinterview_requested")) == len(passed)
    with transaction(settings.hub_url) as s:
        events = s.scalars(select(Outbox).where(Outbox.kind == "event")).all()
    assert len(events) == len(passed) and {e.status for e in events} == {"sent"}


def test_a_rescore_that_flips_failed_to_passed_sends_one_request(grouphr, aiview):
    settings, sim = grouphr
    run_source("aiview", settings)
    before = len(sim.events)
    statuses = hub_statuses(settings)
    failed = sorted(k for k, v in statuses.items() if v == "failed")[:2]
    still_passed = sorted(k for k, v in statuses.items() if v == "passed")[0]
    set_result(aiview, failed[0].split(":")[1], "pass")       # failed -> passed: one request
    set_result(aiview, failed[1].split(":")[1], "fail")       # a new version, still failed: none
    set_result(aiview, still_passed.split(":")[1], "pass")    # unchanged verdict: nothing new at all
    run_source("aiview", settings)
    assert hub_statuses(settings)[failed[0]] == "passed"
    assert [e["externalKey"] for e in sim.events[before:]] == [failed[0]]
    run_source("aiview", settings)
    assert len(sim.events) == before + 1


def test_the_request_carries_the_ai_summary_and_only_what_the_policy_allows(grouphr, aiview, monkeypatch, tmp_path):
    settings, sim = grouphr
    policy = tmp_path / "policy.yaml"
    policy.write_text("recipients:\n"
                      "  grouphr: {full_name: masked, national_id: dropped, mobile: dropped, email: dropped, video_url: dropped,\n"
                      "            report_url: plain}\n")
    monkeypatch.setenv("HIRESYNC_POLICY", str(policy))
    settings = Settings.from_env()
    run_source("aiview", settings)
    assert sim.events
    with transaction(settings.hub_url) as s:
        hub = {f"{r.vendor}:{r.vendor_result_id}": r for r in s.scalars(select(InterviewResult))}
    for event in sim.events:
        data, result = event["data"], hub[event["externalKey"]]
        summary = data["aiSummary"]
        assert summary["score"] == result.overall_score and summary["maxScore"] == 100
        assert summary["status"] == "PASSED" and summary["comment"] == result.ai_comment
        assert summary["reportUrl"] == result.report_url and summary["dimensions"]
        assert all({"code", "score", "maxScore"} <= set(d) for d in summary["dimensions"])
        assert "*" in data["candidateName"]  # masked, as the policy says
    assert not leaks(json.dumps(sim.events, ensure_ascii=False), personal_values(aiview.records()))


def test_status_changes_from_the_group_hr_system_update_the_archive_once(grouphr, aiview):
    settings, sim = grouphr
    run_source("aiview", settings)
    key = sim.events[0]["externalKey"]
    t0 = datetime.now(timezone.utc)
    for i, stage in enumerate(("REINTERVIEWED", "OFFER", "HIRED")):
        sim.advance(key, stage, (t0 + timedelta(seconds=i)).isoformat())
    sim.advance("aiview:NO-SUCH-RESULT", "REJECTED")
    assert pull(settings) == {"recorded": 3, "repeated": 0, "unknown": 1, "unmapped": 0}
    again = pull(settings)
    assert again["recorded"] == 0 and again["repeated"] == 3  # re-read (overlap), changed nothing
    with transaction(settings.hub_url) as s:
        assert s.scalar(select(StatusEvent.id).where(StatusEvent.origin == "grouphr").order_by(StatusEvent.id.desc())
                        .limit(1)) is not None
        assert len(s.scalars(select(StatusEvent).where(StatusEvent.origin == "grouphr")).all()) == 3

    sim.advance(key, "REJECTED", (t0 + timedelta(seconds=5)).isoformat())  # later: incremental
    assert pull(settings)["recorded"] == 1

    out = CliRunner().invoke(app, ["workflow", "show", key])
    assert out.exit_code == 0, out.output
    lines = [line.split()[1] for line in out.output.splitlines()]
    assert lines == ["ai_passed", "reinterview_requested", "reinterviewed", "offer", "hired", "rejected"]
    assert not leaks(out.output, personal_values(aiview.records()))
    assert "面试官备注" not in out.output  # the feed's free text is not copied


def test_a_broken_rules_file_is_refused_naming_file_and_key(sqlite_settings, monkeypatch, tmp_path):
    rules = tmp_path / "workflow.yaml"
    monkeypatch.setenv("HIRESYNC_WORKFLOW", str(rules))
    good = (REPO / "workflow.yaml").read_text(encoding="utf-8")
    for broken, key in [(good.replace("{status: passed}", "{status: passd}"), "rules.reinterview_on_pass.when.status"),
                        (good.replace("target: grouphr", "target: ehr"), "rules.reinterview_on_pass.target"),
                        (good.replace("mapping: mappings/targets/grouphr_reinterview.yaml", "mapping: nope.yaml"),
                         "rules.reinterview_on_pass.mapping"),
                        (good.replace("    event: REINTERVIEW_REQUEST\n", ""), "rules.reinterview_on_pass")]:
        rules.write_text(broken, encoding="utf-8")
        with pytest.raises(ConfigError) as err:
            load_workflow(sqlite_settings)
        assert err.value.file == str(rules) and err.value.key == key, str(err.value)
        assert str(rules) in str(err.value)
    out = CliRunner().invoke(app, ["workflow", "pull"])
    assert out.exit_code == 1 and str(rules) in out.output and "rules.reinterview_on_pass" in out.output

"""Sync state and open issues per source and target (hiresync.monitor.sync_status), derived from the hub as
it is: each issue appears with its cause and goes away with it. Real simulators, real hubs."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from connectors.errors import SourceAuthError
from hiresync.delivery import outbox as outbox_mod
from hiresync.cli import app
from hiresync.hub.models import Run, SourceState
from hiresync.hub.store import transaction
from hiresync.delivery.outbox import relay
from hiresync.delivery.outbox_admin import retry
from hiresync.privacy.pii import Keyring
from hiresync.pipeline import runner
from hiresync.pipeline.runner import run_source
from hiresync.monitor.sync_status import Thresholds, sync_status
from simulators.hrtargets import GroupHRSimulator
from tests.helpers import connect, leaks, personal_values


def codes(doc: dict, subject: str) -> list[str]:
    return [i["code"] for i in doc["issues"] if i["subject"] == subject]


def load_only(settings, monkeypatch) -> dict:
    monkeypatch.setattr(runner, "STEPS", tuple(s for s in runner.STEPS if s[0] != "deliver"))
    return run_source("aiview", settings)


def test_expired_credentials_appear_in_status_and_resolve_once_fixed(settings, aiview, monkeypatch):
    assert sync_status(settings)["sources"]["aiview"]["state"] == "not_synced"
    connect(monkeypatch, aiview, password="expired-secret")
    with pytest.raises(SourceAuthError, match="credentials refused"):
        run_source("aiview", settings)

    doc = sync_status(settings)
    assert doc["sources"]["aiview"]["state"] == "failed" and codes(doc, "aiview") == ["expired_credentials"]
    result = CliRunner().invoke(app, ["status", "--json"])
    shown = json.loads(result.output)
    assert set(shown["sources"]["aiview"]) == {"state", "reason", "dead_letters", "issues", "last_run", "watermark",
                                               "quarantine_open", "quarantine_by_reason", "unmapped_dimensions"}  # one state
    src = shown["sources"]["aiview"]
    assert src["state"] == "failed" and [i["code"] for i in src["issues"]] == ["expired_credentials"]
    assert [i["code"] for i in shown["issues"]] == ["expired_credentials"] and "outbox_pending" in shown
    assert "expired-secret" not in result.output and aiview.client_secret not in result.output
    text = CliRunner().invoke(app, ["status"]).output
    assert "state:       failed" in text and "expired_credentials [source aiview]" in text

    connect(monkeypatch, aiview)  # the connection is fixed
    run_source("aiview", settings)
    doc = sync_status(settings)
    assert doc["sources"]["aiview"]["state"] == "done" and doc["issues"] == []
    assert doc["targets"]["ehr"]["state"] == "done" and doc["targets"]["ehr"]["sent"] > 0
    assert "open issues: none" in CliRunner().invoke(app, ["status"]).output


def test_dead_letters_are_repeated_refusals_until_retried_and_sent(settings, aiview, monkeypatch, tmp_path):
    sources = tmp_path / "sources.yaml"
    sources.write_text("sources:\n  aiview: {profile: connectors/profiles/aiview.yaml, mapping: mappings/aiview.yaml, "
                       "targets: [ehr, grouphr]}\n")
    monkeypatch.setenv("HIRESYNC_SOURCES", str(sources))
    outbox_mod.CIRCUITS.clear()
    from hiresync.config.settings import Settings

    settings = Settings.from_env()
    keys = Keyring.load(settings.key_file)
    with GroupHRSimulator() as grouphr:
        connect(monkeypatch, grouphr, "hiresync_grouphr")
        load_only(settings, monkeypatch)
        doc = sync_status(settings)
        assert doc["targets"]["grouphr"]["state"] == "syncing" and doc["issues"] == []  # queued, nothing wrong
        grouphr.refuse = set(_result_keys(settings, keys, "grouphr")[:3])
        relay(settings, keys, "grouphr")
        doc = sync_status(settings)
        dead = doc["targets"]["grouphr"]["dead"]
        assert dead > 0 and codes(doc, "grouphr") == ["repeated_refusals"]
        assert doc["targets"]["grouphr"]["state"] == "partially_synced"
        assert doc["sources"]["aiview"]["state"] == "partially_synced" and doc["sources"]["aiview"]["dead_letters"] == dead
        assert not leaks(json.dumps(doc, ensure_ascii=False), personal_values(aiview.records()))

        grouphr.refuse = set()
        assert retry(settings, "grouphr") == dead
        relay(settings, keys, "grouphr")
        doc = sync_status(settings)
        assert doc["issues"] == [] and doc["targets"]["grouphr"]["state"] == "done"
        assert doc["sources"]["aiview"]["state"] == "done"
    outbox_mod.CIRCUITS.clear()


def _result_keys(settings, keys, target: str) -> list[str]:
    from sqlalchemy import select

    from hiresync.delivery.render import bodies
    from hiresync.hub.models import Outbox

    with transaction(settings.hub_url) as s:
        rows = s.scalars(select(Outbox).where(Outbox.target == target).order_by(Outbox.id)).all()
        found = bodies(s, keys, rows)
        return [found[r.id]["result"]["result_key"] for r in rows]


def test_a_growing_outbox_is_an_issue_until_drained(settings, aiview, monkeypatch):
    load_only(settings, monkeypatch)
    later = datetime.now(timezone.utc) + timedelta(minutes=90)
    doc = sync_status(settings, now=later)  # the oldest row waited 90 minutes (limit 60)
    assert codes(doc, "ehr") == ["growing_outbox"] and doc["targets"]["ehr"]["state"] == "syncing"
    assert sync_status(settings)["issues"] == []  # right now: young and few
    few = Thresholds(outbox_pending_max=10)
    assert codes(sync_status(settings, thresholds=few), "ehr") == ["growing_outbox"]  # by count alone

    relay(settings, Keyring.load(settings.key_file), "ehr")
    assert sync_status(settings, now=later, thresholds=few)["issues"] == []


def _run(s, source: str, i: int, status: str, pulled: int, quarantined: int, error: str | None = None,
         started: datetime | None = None) -> None:
    s.add(Run(id=f"{source}__r{i}", source=source, status=status, pulled=pulled, quarantined=quarantined,
              inserted=pulled - quarantined, error=error,
              started_at=started or datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(hours=i)))


def test_a_quarantine_spike_against_the_recent_average_comes_and_goes(settings):
    with transaction(settings.hub_url) as s:
        for i in range(4):
            _run(s, "aiview", i, "success", 100, 2)
        _run(s, "aiview", 4, "success", 100, 15)  # 15% against an average of 2%
    doc = sync_status(settings)
    assert codes(doc, "aiview") == ["quarantine_spike"] and "15%" in doc["issues"][0]["detail"]
    assert doc["sources"]["aiview"]["state"] == "done"  # below quarantine_partial_share (20%)
    assert sync_status(settings, thresholds=Thresholds(quarantine_spike_factor=10))["issues"] == []

    with transaction(settings.hub_url) as s:
        _run(s, "aiview", 5, "success", 100, 30)
    doc = sync_status(settings)
    assert doc["sources"]["aiview"]["state"] == "partially_synced" and codes(doc, "aiview") == ["quarantine_spike"]
    with transaction(settings.hub_url) as s:
        _run(s, "aiview", 6, "success", 100, 1)  # the vendor fixed its data
    doc = sync_status(settings)
    assert doc["issues"] == [] and doc["sources"]["aiview"]["state"] == "done"


def test_states_syncing_failed_and_paused(settings, monkeypatch, tmp_path):
    now = datetime.now(timezone.utc)
    with transaction(settings.hub_url) as s:
        _run(s, "aiview", 1, "extracting", 0, 0, started=now - timedelta(minutes=1))
    assert sync_status(settings, now=now)["sources"]["aiview"]["state"] == "syncing"
    doc = sync_status(settings, now=now + timedelta(hours=5))  # nobody finished it: the worker died
    assert doc["sources"]["aiview"]["state"] == "failed"

    with transaction(settings.hub_url) as s:
        s.add(SourceState(source="aiview", state="frozen", reason="schema drift", run_id="aiview__r1"))
    src = sync_status(settings)["sources"]["aiview"]
    assert src["state"] == "frozen" and "schema drift" in src["reason"]  # its own state, with an issue
    assert [i["code"] for i in src["issues"]][:1] == ["source_frozen"]

    sources = tmp_path / "sources.yaml"
    sources.write_text("sources:\n  kuaipin: {profile: connectors/profiles/aiview.yaml, mapping: mappings/aiview.yaml, "
                       "paused: true}\n")
    monkeypatch.setenv("HIRESYNC_SOURCES", str(sources))
    from hiresync.config.settings import Settings

    assert sync_status(Settings.from_env())["sources"]["kuaipin"]["state"] == "paused"


def test_monitor_thresholds_are_schema_checked(settings, tmp_path, monkeypatch):
    from hiresync.errors import ConfigError
    from hiresync.config.settings import Settings
    from hiresync.monitor.sync_status import load_thresholds

    policy = tmp_path / "policy.yaml"
    policy.write_text("monitor: {outbox_pending_max: 5, outbox_oldest_minute: 3}\n")
    monkeypatch.setenv("HIRESYNC_POLICY", str(policy))
    with pytest.raises(ConfigError, match=r"policy.yaml: monitor: unknown key .*outbox_oldest_minute"):
        load_thresholds(Settings.from_env())
    policy.write_text("monitor: {outbox_pending_max: 5}\n")
    assert load_thresholds(Settings.from_env()).outbox_pending_max == 5

"""`hiresync status` never contradicts itself: one state per source, frozen with its issue and the
command that clears it, failed runs that say nothing was loaded, listings that say when they are cut,
and unknown source / target names refused with the configured ones."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from hiresync.cli import app
from hiresync.pipeline.runner import run_source
from simulators.aiview import AIViewSimulator
from tests.helpers import connect, leaks, personal_values
from tests.test_drift import EditedAIView, drop_name

runner = CliRunner()


def _states(doc: dict, name: str) -> list[str]:
    """Every state the document gives a source, wherever it sits."""
    found = []

    def walk(node, under_source):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "state" and under_source:
                    found.append(v)
                walk(v, under_source or k == name)
        elif isinstance(node, list):
            for v in node:
                walk(v, under_source)

    walk(doc, False)
    return found


def test_one_state_per_source_before_and_after_a_run(sqlite_settings, aiview):
    doc = json.loads(runner.invoke(app, ["status", "--json"]).output)
    assert _states(doc, "aiview") == ["not_synced"]
    assert _states(doc, "kuaipin") == ["paused"]  # paused: true in sources.yaml
    assert runner.invoke(app, ["sync", "aiview"]).exit_code == 0
    doc = json.loads(runner.invoke(app, ["status", "--json"]).output)
    assert _states(doc, "aiview") == ["done"]
    text = runner.invoke(app, ["status"]).output
    assert text.count("state:") == len(doc["sources"]) and "state:       done" in text


def test_a_frozen_source_is_frozen_with_an_open_issue_and_the_command_that_clears_it(sqlite_settings, monkeypatch):
    with EditedAIView(drop_name, count=60, seed=5, defect_rate=0, rescore_rate=0) as broken:
        connect(monkeypatch, broken)
        assert runner.invoke(app, ["sync", "aiview"]).exit_code == 1
        secrets = personal_values(broken.records())

    result = runner.invoke(app, ["status", "--json"])
    doc = json.loads(result.output)
    src = doc["sources"]["aiview"]
    assert _states(doc, "aiview") == ["frozen"] and "candidate.full_name" in src["reason"]
    frozen = [i for i in doc["issues"] if i["code"] == "source_frozen"]
    assert len(frozen) == 1 and frozen[0]["subject"] == "aiview"
    assert "hiresync source unfreeze aiview" in frozen[0]["detail"] and "hiresync source unfreeze aiview" in frozen[0]["summary_zh"]
    # the failed run: what it pulled, and that nothing was loaded (no sum of zeros that does not add up)
    run = src["last_run"]
    assert run["status"] == "failed" and run["pulled"] == 60 and run["loaded"] is False
    text = runner.invoke(app, ["status"]).output
    assert "state:       frozen" in text and "hiresync source unfreeze aiview" in text
    assert "pulled 60, nothing loaded (stopped at map)" in text and "= inserted" not in text
    assert not leaks(result.output + text, secrets)

    with AIViewSimulator(count=60, seed=5, defect_rate=0, rescore_rate=0) as fixed:
        connect(monkeypatch, fixed)
        assert runner.invoke(app, ["source", "unfreeze", "aiview"]).exit_code == 0
        run_source("aiview", sqlite_settings)
    doc = json.loads(runner.invoke(app, ["status", "--json"]).output)
    assert _states(doc, "aiview") == ["done"] and not [i for i in doc["issues"] if i["code"] == "source_frozen"]


def test_quarantine_list_says_when_it_is_cut(sqlite_settings, aiview):
    run_source("aiview", sqlite_settings)
    doc = json.loads(runner.invoke(app, ["quarantine", "list", "--limit", "5", "--json"]).output)
    assert doc["open"] == len(aiview.defects) > 5 and len(doc["rows"]) == 5
    assert doc["shown"] == 5 and doc["cut"] is True
    text = runner.invoke(app, ["quarantine", "list", "--limit", "5"]).output
    assert f"showing 5 of {len(aiview.defects)}" in text and "--limit" in text
    full = runner.invoke(app, ["quarantine", "list"]).output
    assert "showing" not in full


@pytest.mark.parametrize("args, configured", [
    (["quarantine", "list", "--source", "aiveiw"], "aiview, dept_reinterview, kuaipin, zhiping"),
    (["quarantine", "replay", "--source", "aiveiw"], "aiview, dept_reinterview, kuaipin, zhiping"),
    (["sync", "aiveiw"], "aiview, dept_reinterview, kuaipin, zhiping"),
    (["source", "unfreeze", "aiveiw"], "aiview, dept_reinterview, kuaipin, zhiping"),
    (["outbox", "status", "--target", "ehrr"], "ehr, grouphr, hrcloud"),
    (["outbox", "retry", "--target", "ehrr"], "ehr, grouphr, hrcloud"),
    (["deliver", "ehrr"], "ehr, grouphr, hrcloud"),
    (["outbox", "replay", "ehrr"], "ehr, grouphr, hrcloud"),
])
def test_unknown_source_or_target_names_are_an_error_naming_the_configured_ones(sqlite_settings, args, configured):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert configured in result.output and "Traceback" not in result.output

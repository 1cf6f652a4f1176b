"""The `hiresync` command line: sync and status, text and JSON."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from hiresync.cli import app

runner = CliRunner()


def test_status_before_any_run(sqlite_settings):
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["sources"]["aiview"] == {"state": "not_synced", "reason": "no run yet", "dead_letters": 0, "issues": [],
                                        "last_run": None, "watermark": None,
                                        "quarantine_open": 0, "quarantine_by_reason": {},
                                        "unmapped_dimensions": []}


def test_sync_then_status_show_the_run_its_counts_watermark_and_quarantine(sqlite_settings, aiview):
    synced = runner.invoke(app, ["sync", "aiview"])
    assert synced.exit_code == 0, synced.output
    assert "extract" in synced.output and "load" in synced.output

    doc = json.loads(runner.invoke(app, ["status", "--json"]).output)
    src = doc["sources"]["aiview"]
    run = src["last_run"]
    assert run["status"] == "success"
    assert run["pulled"] == run["inserted"] + run["updated"] + run["unchanged"] + run["quarantined"]
    assert src["watermark"] == run["watermark_after"]
    assert src["quarantine_open"] == len(aiview.defects) == sum(src["quarantine_by_reason"].values())
    assert doc["outbox_pending"] == {}

    text = runner.invoke(app, ["status"]).output
    assert f"quarantine:  {len(aiview.defects)} open" in text and run["run_id"] in text


def test_unknown_source_is_one_clear_line(sqlite_settings):
    result = runner.invoke(app, ["sync", "nosuch"])
    assert result.exit_code == 2  # a usage error, like any other bad argument
    assert "no source 'nosuch' in sources.yaml; configured: aiview, dept_reinterview, kuaipin, zhiping" in result.output
    assert "Traceback" not in result.output

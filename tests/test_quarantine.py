"""Quarantine listing (masked, filtered, counted) and replay through the current mapping, once."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import yaml
from sqlalchemy import func, select
from typer.testing import CliRunner

from hiresync.cli import app
from hiresync.hub.models import InterviewResult, Quarantine, RecordLineage, Run, Watermark
from hiresync.hub.store import transaction
from hiresync.pipeline.runner import run_source
from hiresync.tools.quarantine import listing, replay
from tests.helpers import REPO, leaks, personal_values

runner = CliRunner()
KIND_RULE = {"bad_id_checksum": "ID_CHECKSUM", "missing_required": "NOT_NULL", "score_out_of_range": "RANGE",
             "malformed_time": "DATETIME"}


def count(settings, model, *where) -> int:
    with transaction(settings.hub_url) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def fixed_mapping_settings(settings, tmp_path):
    """The same source with a mapping that reads scores on a 0-200 scale: the RANGE defects now map."""
    spec = yaml.safe_load((REPO / "mappings/aiview.yaml").read_text(encoding="utf-8"))
    spec["version"] = "1.1.0"
    spec["result"]["overall_score"]["scale"] = 200
    mapping = tmp_path / "aiview-fixed.yaml"
    mapping.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    sources = tmp_path / "sources.yaml"
    sources.write_text(yaml.safe_dump({"sources": {"aiview": {
        "profile": str(REPO / "connectors/profiles/aiview.yaml"), "mapping": str(mapping), "targets": ["ehr"]}}}),
        encoding="utf-8")
    return replace(settings, sources_file=sources)


def test_list_counts_by_reason_filters_and_masks(sqlite_settings, aiview):
    run_source("aiview", sqlite_settings)
    expected = Counter(KIND_RULE[k] for k in aiview.defects.values())

    doc = json.loads(runner.invoke(app, ["quarantine", "list", "--json"]).output)
    assert doc["open"] == len(aiview.defects) and doc["by_reason"] == dict(expected)
    assert {r["vendor_result_id"] for r in doc["rows"]} == set(aiview.defects)

    ranged = json.loads(runner.invoke(app, ["quarantine", "list", "--reason", "RANGE", "--json"]).output)
    assert ranged["by_reason"] == {"RANGE": expected["RANGE"]}
    assert {r["vendor_result_id"] for r in ranged["rows"]} == {k for k, v in aiview.defects.items()
                                                              if v == "score_out_of_range"}
    assert runner.invoke(app, ["quarantine", "list", "--source", "other", "--json"]).exit_code == 2  # no such source

    text = runner.invoke(app, ["quarantine", "list"]).output
    assert text.startswith(f"{len(aiview.defects)} open: ")
    id_rows = [line for line in text.splitlines() if "ID_CHECKSUM (" in line]
    assert id_rows and all("********" in line for line in id_rows)  # the resident ID is shown masked
    assert leaks(text + json.dumps(doc, ensure_ascii=False), personal_values(aiview.records())) == []


def test_replay_after_a_mapping_fix_loads_once_and_resolves_with_the_run(settings, aiview, tmp_path):
    first = run_source("aiview", settings)
    ranged = {k for k, v in aiview.defects.items() if v == "score_out_of_range"}
    with transaction(settings.hub_url) as s:
        mark = s.get(Watermark, "aiview").cursor_value
    results_before = count(settings, InterviewResult)

    # Without a fix the rows fail again: closed as "replayed", replaced by the replay run's own rows.
    [unfixed] = replay(settings, "aiview", "RANGE")
    assert unfixed["pulled"] == unfixed["quarantined"] == len(ranged) and unfixed["inserted"] == 0
    assert count(settings, Quarantine, Quarantine.status == "open") == len(aiview.defects)
    assert count(settings, Quarantine, Quarantine.status == "replayed",
                 Quarantine.resolved_run_id == unfixed["run_id"]) == len(ranged)

    fixed = fixed_mapping_settings(settings, tmp_path)
    [summary] = replay(fixed, "aiview", "RANGE")
    assert summary["status"] == "success" and summary["run_id"].startswith("aiview__replay__")
    assert summary["pulled"] == summary["inserted"] == len(ranged) and summary["quarantined"] == 0
    assert summary["pulled"] == summary["inserted"] + summary["updated"] + summary["unchanged"] + summary["quarantined"]
    assert summary["delivered"] == len(ranged) and summary["watermark_after"] is None
    assert count(settings, InterviewResult) == results_before + len(ranged)
    with transaction(settings.hub_url) as s:
        assert s.get(Watermark, "aiview").cursor_value == mark  # a replay never moves the watermark
        resolved = s.scalars(select(Quarantine).where(Quarantine.status == "resolved")).all()
        loaded = dict(s.execute(select(InterviewResult.vendor_result_id, InterviewResult.mapping_version)).all())
        lineage = s.scalars(select(RecordLineage.outcome).where(RecordLineage.run_id == summary["run_id"])).all()
    assert {q.vendor_result_id for q in resolved} == ranged
    assert all(q.resolved_run_id == summary["run_id"] and q.resolved_at for q in resolved)
    assert {loaded[k] for k in ranged} == {"1.1.0"} and set(lineage) == {"inserted"}

    # Twice: nothing is left for RANGE; replaying everything re-fails the rest and loads nothing again.
    assert replay(fixed, "aiview", "RANGE") == []
    [rest] = replay(fixed, "aiview")
    assert rest["pulled"] == rest["quarantined"] == len(aiview.defects) - len(ranged) and rest["inserted"] == 0
    assert count(settings, InterviewResult) == results_before + len(ranged)
    assert count(settings, Quarantine, Quarantine.status == "open") == len(aiview.defects) - len(ranged)
    assert listing(settings)["open"] == len(aiview.defects) - len(ranged)
    with transaction(settings.hub_url) as s:
        runs = {r.id: r for r in s.scalars(select(Run))}
    assert all(r.pulled == r.inserted + r.updated + r.unchanged + r.quarantined for r in runs.values())
    assert first["run_id"] in runs and len(runs) == 4


def test_replay_cli_with_nothing_open(sqlite_settings):
    result = runner.invoke(app, ["quarantine", "replay"])
    assert result.exit_code == 0 and "nothing to replay" in result.output

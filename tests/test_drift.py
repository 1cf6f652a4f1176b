"""Schema drift freezes the source: nothing of the batch loads, the watermark stays, runs refuse until unfreeze."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Callable

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from hiresync.cli import app
from hiresync.contract.drift import SchemaDrift, SourceFrozen
from hiresync.hub.models import InterviewResult, Quarantine, RawPayload, Run, SourceState, Watermark
from hiresync.hub.store import transaction
from hiresync.pipeline.runner import run_source
from simulators.aiview import AIViewSimulator
from tests.helpers import REPO, connect, leaks, personal_values

runner = CliRunner()


class EditedAIView(AIViewSimulator):
    """AIView whose payloads are edited after generation: how a vendor's silent schema change looks."""

    def __init__(self, edit: Callable[[int, dict], Any], **kwargs):
        self._edit = edit
        super().__init__(**kwargs)

    def _build(self, *args) -> None:
        super()._build(*args)
        for i, body in enumerate(self._bodies):
            record = json.loads(body)
            self._edit(i, record)
            self._bodies[i] = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()


def count(settings, model, *where) -> int:
    with transaction(settings.hub_url) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def drop_name(_: int, record: dict) -> None:
    record["candidate"].pop("name", None)


def test_a_required_field_disappearing_freezes_the_source_and_loads_nothing(settings, monkeypatch):
    with EditedAIView(drop_name, count=60, seed=5, defect_rate=0, rescore_rate=0) as sim:
        connect(monkeypatch, sim)
        with pytest.raises(SchemaDrift) as err:
            run_source("aiview", settings)
    message = str(err.value)
    assert "candidate.full_name" in message and "candidate.name" in message and "NOT_NULL" in message
    assert count(settings, InterviewResult) == count(settings, Quarantine) == count(settings, RawPayload) == 0
    with transaction(settings.hub_url) as s:
        assert s.get(Watermark, "aiview") is None
        state = s.get(SourceState, "aiview")
        run = s.scalars(select(Run)).one()
    assert state.state == "frozen" and "candidate.full_name" in state.reason and state.run_id == run.id
    assert run.status == "failed" and run.error.startswith("map: schema drift") and "NOT_NULL" in run.error
    assert run.validation_summary["drift"]["drifted"] is True


def test_a_frozen_source_refuses_to_run_until_unfrozen_and_status_shows_it(sqlite_settings, monkeypatch):
    with EditedAIView(drop_name, count=60, seed=5, defect_rate=0, rescore_rate=0) as broken:
        connect(monkeypatch, broken)
        assert runner.invoke(app, ["sync", "aiview"]).exit_code == 1

    doc = json.loads(runner.invoke(app, ["status", "--json"]).output)
    src = doc["sources"]["aiview"]
    assert src["state"] == "frozen" and "candidate.full_name" in src["reason"]
    assert src["watermark"] is None and src["last_run"]["status"] == "failed"
    text = runner.invoke(app, ["status"]).output
    assert "state:       frozen" in text and "schema drift" in text

    with AIViewSimulator(count=60, seed=5, defect_rate=0, rescore_rate=0) as fixed:
        connect(monkeypatch, fixed)
        with pytest.raises(SourceFrozen, match="hiresync source unfreeze aiview"):
            run_source("aiview", sqlite_settings)
        assert count(sqlite_settings, Run) == 1  # the refused run did not even start

        unfrozen = runner.invoke(app, ["source", "unfreeze", "aiview"])
        assert unfrozen.exit_code == 0 and "unfrozen" in unfrozen.output
        summary = run_source("aiview", sqlite_settings)
    assert summary["status"] == "success" and summary["inserted"] == 60
    # The watermark stayed put while frozen, so this run pulled the frozen window again, from the start.
    assert summary["pulled_since"].startswith("2026-01-01")
    assert json.loads(runner.invoke(app, ["status", "--json"]).output)["sources"]["aiview"]["state"] == "done"


def _sources_with(tmp_path, **extra) -> str:
    doc = {"sources": {"aiview": {"profile": str(REPO / "connectors/profiles/aiview.yaml"),
                                  "mapping": str(REPO / "mappings/aiview.yaml"), "targets": ["ehr"], **extra}}}
    path = tmp_path / "sources.yaml"
    path.write_text(json.dumps(doc), encoding="utf-8")  # JSON is YAML
    return str(path)


def test_more_than_the_threshold_failing_freezes_and_names_the_broken_expectations(settings, monkeypatch):
    # 30% defects (four kinds) against the default threshold of 20%.
    with AIViewSimulator(count=100, seed=3, defect_rate=0.3, rescore_rate=0) as sim:
        connect(monkeypatch, sim)
        with pytest.raises(SchemaDrift) as err:
            run_source("aiview", settings)
    assert "30 of 100 rows failed (30% > drift_threshold 20%)" in str(err.value)
    for broken in ("candidate.national_id ID_CHECKSUM", "overall_score RANGE", "completed_at DATETIME"):
        assert broken in str(err.value)
    assert count(settings, InterviewResult) == count(settings, Quarantine) == 0


def test_the_threshold_is_configurable_per_source(settings, monkeypatch, tmp_path):
    settings = replace(settings, sources_file=_sources_with(tmp_path, drift_threshold=0.5))
    with AIViewSimulator(count=100, seed=3, defect_rate=0.3, rescore_rate=0) as sim:
        connect(monkeypatch, sim)
        summary = run_source("aiview", settings)
    assert summary["status"] == "success" and summary["quarantined"] == 30 and summary["inserted"] == 70


def test_a_bad_drift_threshold_is_a_config_error(sqlite_settings, tmp_path):
    from hiresync.errors import ConfigError
    from hiresync.config.sources import load_sources

    with pytest.raises(ConfigError, match=r"sources\.aiview\.drift_threshold"):
        load_sources(replace(sqlite_settings, sources_file=_sources_with(tmp_path, drift_threshold=20)))


def test_small_batches_are_not_judged_for_drift(settings, monkeypatch):
    # 10 records, below drift_min_rows (20): a missing name is a quarantined record, not a schema change.
    with EditedAIView(drop_name, count=10, seed=5, defect_rate=0, rescore_rate=0) as sim:
        connect(monkeypatch, sim)
        summary = run_source("aiview", settings)
    assert summary["status"] == "success" and summary["quarantined"] == 10


def test_data_docs_show_the_frozen_run_without_personal_data(sqlite_settings, monkeypatch):
    with EditedAIView(drop_name, count=60, seed=5, defect_rate=0, rescore_rate=0) as sim:
        connect(monkeypatch, sim)
        values = personal_values(sim.records())
        with pytest.raises(SchemaDrift):
            run_source("aiview", sqlite_settings)
    doc = json.loads(runner.invoke(app, ["status", "--json"]).output)
    index = doc["data_docs"]
    assert index and index.startswith(str(sqlite_settings.var_dir))
    pages = [p.read_text(encoding="utf-8") for p in (sqlite_settings.var_dir / "data_docs").rglob("*.html")]
    assert len(pages) == 2  # the index and the one run
    site = "\n".join(pages)
    assert "FROZEN" in site and "candidate.full_name" in site and "ExpectColumnValuesToNotBeNull" in site
    assert leaks(site, values) == []

"""No plaintext personal data in logs, exceptions, XComs, lineage events, quarantine listings or
status output (DESIGN.md invariant 6), checked over a full Airflow run with everything captured."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from hiresync.cli import app
from hiresync.hub.models import Quarantine
from hiresync.hub.store import transaction
from hiresync.pipeline.runner import run_source
from tests.helpers import connect, leaks, personal_values


def test_a_full_airflow_run_leaks_no_personal_data(airflow_db, sqlite_settings, aiview, caplog, capfd):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.state import DagRunState

    values = personal_values(aiview.records())
    assert len(values) > 1000  # the check below means something only if there is something to find
    caplog.set_level(logging.DEBUG)

    dag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).dags["hiresync_sync_aiview"]
    dag_run = dag.test()
    assert dag_run.state == DagRunState.SUCCESS
    status = CliRunner().invoke(app, ["status", "--json"])
    status_text = CliRunner().invoke(app, ["status"])
    assert status.exit_code == 0 and status_text.exit_code == 0
    out, err = capfd.readouterr()

    with sqlite3.connect(airflow_db / "airflow.db") as conn:
        xcoms = json.dumps([str(v) for (v,) in conn.execute("select value from xcom")], ensure_ascii=False)
    assert "pulled" in xcoms  # the tasks did pass their summaries
    lineage_file = Path(json.loads(os.environ["AIRFLOW__OPENLINEAGE__TRANSPORT"])["log_file_path"])
    lineage = lineage_file.read_text(encoding="utf-8") if lineage_file.exists() else ""
    with transaction(sqlite_settings.hub_url) as s:
        quarantine = json.dumps([q.problems for q in s.scalars(select(Quarantine))], ensure_ascii=False)
    assert "ID_CHECKSUM" in quarantine and "********" in quarantine  # masked values are there, plain ones not

    for name, text in {"logs": caplog.text, "stdout": out, "stderr": err, "xcom": xcoms, "lineage": lineage,
                       "status --json": status.output, "status": status_text.output, "quarantine": quarantine}.items():
        assert leaks(text, values) == [], f"personal data in {name}"


def test_errors_carry_no_secret_or_personal_data(sqlite_settings, aiview, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    connect(monkeypatch, aiview, password="Sup3r-Secret-Value")
    result = CliRunner().invoke(app, ["sync", "aiview"])
    assert result.exit_code == 1
    assert "credentials refused" in result.output
    assert "Sup3r-Secret-Value" not in result.output + caplog.text

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


def test_the_demo_runs_and_neither_its_output_nor_its_logs_hold_personal_data(airflow_db, tmp_path):
    """`make demo` end to end (smaller), as a newcomer would run it."""
    import subprocess
    import sys

    from simulators.aiview import AIViewSimulator

    env = dict(os.environ, HIRESYNC_VAR=str(tmp_path / "var"), HIRESYNC_DEMO_COUNT="300")
    for k in ("HIRESYNC_HUB_URL", "HIRESYNC_EHR_URL", "HIRESYNC_KEYS"):
        env.pop(k, None)
    subprocess.run([sys.executable, "-m", "hiresync.cli", "init"], env=env, check=True, capture_output=True)
    demo = subprocess.run([sys.executable, "-m", "hiresync.demo"], env=env, capture_output=True, text=True)

    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert "inserted" in demo.stdout and "updated          50" in demo.stdout
    logs = (tmp_path / "var" / "demo-airflow.log").read_text(encoding="utf-8")
    assert "[DAG TEST] end task task_id=publish" in logs
    values = personal_values(AIViewSimulator(count=300, seed=7).records())  # the demo's data set
    for name, text in {"demo output": demo.stdout + demo.stderr, "demo Airflow log": logs}.items():
        assert leaks(text, values) == [], f"personal data in {name}"

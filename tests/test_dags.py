"""The DAG files import cleanly and the sync DAG runs end to end in Airflow (dag.test)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import REPO


def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_every_dag_file_imports_without_errors():
    bag = dagbag()
    assert bag.import_errors == {}
    assert "hiresync_sync_aiview" in bag.dags
    dag = bag.dags["hiresync_sync_aiview"]
    assert [t.task_id for t in dag.topological_sort()] == ["extract", "validate", "map", "load", "deliver", "publish",
                                                                  "data_docs"]


def test_dag_files_import_nothing_heavy_at_parse_time():
    code = ("import sys, runpy; runpy.run_path(sys.argv[1]);"
            "heavy = [m for m in ('great_expectations', 'pandas', 'hiresync.pipeline', 'cryptography.hazmat.primitives.ciphers.aead') if m in sys.modules];"
            "print(','.join(heavy))")
    for dag_file in (REPO / "dags").glob("*.py"):
        out = subprocess.run([sys.executable, "-c", code, str(dag_file)], capture_output=True, text=True, env=os.environ,
                             check=True)
        assert out.stdout.strip() == "", f"{dag_file.name} imports {out.stdout.strip()} at parse time"


def test_sync_dag_runs_end_to_end_and_accounts_for_every_result(airflow_db, sqlite_settings, aiview):
    from airflow.utils.state import DagRunState
    from hiresync.hub.models import Run
    from hiresync.hub.store import transaction

    dag = dagbag().dags["hiresync_sync_aiview"]
    dag_run = dag.test()

    assert dag_run.state == DagRunState.SUCCESS
    with transaction(sqlite_settings.hub_url) as s:
        run = s.get(Run, f"aiview__{dag_run.run_id}")
    assert run.status == "success"
    assert run.pulled == run.inserted + run.updated + run.unchanged + run.quarantined
    assert run.pulled == 300 + len(aiview.rescored) and run.quarantined == len(aiview.defects)
    assert run.delivered == run.inserted > 0


def test_a_failing_source_fails_the_dag_run_and_says_why(airflow_db, sqlite_settings, aiview):
    from airflow.utils.state import DagRunState
    from hiresync.hub.models import Run
    from hiresync.hub.store import transaction

    aiview.outage = True
    dag_run = dagbag().dags["hiresync_sync_aiview"].test()

    assert dag_run.state == DagRunState.FAILED
    with transaction(sqlite_settings.hub_url) as s:
        run = s.get(Run, f"aiview__{dag_run.run_id}")
    assert run.status == "failed" and "extract" in run.error and "aiview" in run.error

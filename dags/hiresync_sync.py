"""One sync DAG per source in sources.yaml: extract -> validate -> map -> load -> deliver -> publish.

Kept thin on purpose: the steps live in hiresync.pipeline and are imported inside the tasks (the
engine pulls in pandas and Great Expectations, which would slow every parse of this file). Tasks
hand each other nothing but small count summaries; the data stays in run-scoped staging files and
the hub database, found again from the source name and the run id.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from airflow.sdk import Asset, dag, get_current_context, task

from hiresync.audit.datasets import airflow_lineage  # names only: stdlib, PyYAML, SQLAlchemy's URL
from hiresync.config.sources import check_sources  # PyYAML + jsonschema, no engine

HOME = Path(os.environ.get("HIRESYNC_HOME", Path(__file__).resolve().parents[1]))
SOURCES_FILE = Path(os.environ.get("HIRESYNC_SOURCES", HOME / "sources.yaml"))


# What each run's Asset event carries in `extra` (dags/hiresync_results_digest.py reads it).
ASSET_EXTRA = ("run_id", "source", "status", "pulled", "inserted", "updated", "unchanged", "quarantined", "delivered",
               "mapping_version", "watermark_after")


def results_asset(source: str) -> Asset:
    """The Asset a source's sync DAG updates once per successful run."""
    return Asset(uri=f"hiresync://hub/interview_results/{source}", name=f"hiresync_{source}_results")


def _run_id(source: str) -> str:
    return f"{source}__{get_current_context()['run_id']}"


def _step(source: str, step: str) -> dict:
    from hiresync.pipeline.runner import run_step

    return run_step(source, _run_id(source), step)


def _alert(context) -> None:
    """on_failure_callback: e-mail and chat alert (policy.yaml `alerts:`); never raises."""
    from hiresync.monitor.alerts import on_failure

    on_failure(context)


def build(source: str, cfg: dict):
    results = results_asset(source)
    # OpenLineage inputs/outputs of each task: vendor endpoint, staging, hub tables, targets.
    io = airflow_lineage(source, cfg)

    @dag(
        dag_id=f"hiresync_sync_{source}",
        description=f"Sync AI-interview results from {source} to the EHR",
        schedule=cfg.get("schedule"),
        start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        max_active_runs=1,  # one run at a time per source: runs share the watermark
        is_paused_upon_creation=cfg.get("paused", False),
        tags=["hiresync", "source"],
        default_args={"retries": 2, "retry_delay": timedelta(seconds=float(os.environ.get("HIRESYNC_RETRY_DELAY", 60))),
                      "on_failure_callback": _alert,  # after the last retry, per failed step
                      # each step logs its own one-line summary (hiresync.monitor.progress) instead
                      "show_return_value_in_logs": False},
        doc_md=__doc__,
    )
    def sync():
        @task(**io["extract"])
        def extract() -> dict:
            return _step(source, "extract")

        @task(**io["validate"])
        def validate(_: dict) -> dict:
            return _step(source, "validate")

        @task(task_id="map", **io["map"])
        def map_(_: dict) -> dict:
            return _step(source, "map")

        @task(**io["load"])
        def load(_: dict) -> dict:
            return _step(source, "load")

        @task(**io["deliver"])
        def deliver(_: dict) -> dict:
            return _step(source, "deliver")

        @task(inlets=io["publish"]["inlets"], outlets=[results, *io["publish"]["outlets"]])
        def publish(_: dict) -> dict:
            summary = _step(source, "publish")
            # The Asset event says what the run did, so a downstream DAG learns it without the hub
            # (counts and ids only: nothing personal rides on an event).
            get_current_context()["outlet_events"][results].extra = {k: summary.get(k) for k in ASSET_EXTRA}
            return summary

        # Data Docs are rebuilt once per run, after the rest, whatever the outcome (a frozen run
        # is when they matter most); one task, so no two writers share the docs folder.
        # No alert of its own: it fails whenever a step failed, and that step has alerted already.
        @task(trigger_rule="all_done", retries=0, on_failure_callback=None)
        def data_docs(_: dict) -> dict:
            return _step(source, "data_docs")

        data_docs(publish(deliver(load(map_(validate(extract()))))))

    return sync()


# Checked (schema, cron, files) before any DAG is built: a mistake is one ConfigError naming the
# file, the key and the problem, not a traceback from deep inside Airflow.
for _name, _cfg in check_sources(SOURCES_FILE, HOME)["sources"].items():
    globals()[f"hiresync_sync_{_name}"] = build(_name, _cfg or {})

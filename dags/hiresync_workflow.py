"""Workflow events: pull the group HR system's status changes (re-interviewed, offer, hired,
rejected) into the hub's status history (workflow.yaml `feeds:`).

The re-interview requests going the other way are queued by each sync's load step (workflow.yaml
`rules:`) and sent by its deliver step. Paused when created: unpause once the connection
hiresync_grouphr exists."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import dag, task


@dag(
    dag_id="hiresync_workflow",
    description="Group HR workflow: status changes in, re-interview requests out",
    schedule="*/15 * * * *",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=True,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1), "show_return_value_in_logs": False},
    tags=["hiresync", "workflow"],
    doc_md=__doc__,
)
def workflow():
    @task
    def pull_status_changes() -> dict:
        from hiresync.config.settings import Settings
        from hiresync.delivery.workflow import pull

        return pull(Settings.from_env(), "grouphr")  # counts only: no personal data in XCom

    pull_status_changes()


workflow()

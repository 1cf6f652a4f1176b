"""Daily housekeeping: the retention policy (policy.yaml) applied to the hub, tombstones kept."""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import dag, task


@dag(
    dag_id="hiresync_housekeeping",
    description="Purge personal data past its retention period (PIPL Art. 19)",
    schedule="@daily",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["hiresync", "housekeeping"],
    doc_md=__doc__,
)
def housekeeping():
    @task
    def retention_purge() -> dict:
        from hiresync.retention import purge
        from hiresync.settings import Settings

        return purge(Settings.from_env(), actor="airflow")

    retention_purge()


housekeeping()

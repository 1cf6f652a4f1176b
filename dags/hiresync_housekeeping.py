"""Daily housekeeping: the retention policy (policy.yaml) applied to the hub, tombstones kept."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import dag, task


def _alert(context) -> None:
    """on_failure_callback: e-mail and chat alert (policy.yaml `alerts:`); never raises."""
    from hiresync.monitor.alerts import on_failure

    on_failure(context)


@dag(
    dag_id="hiresync_housekeeping",
    description="Purge personal data past its retention period (PIPL Art. 19)",
    schedule="@daily",
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["hiresync", "housekeeping"],
    # Retries: a try that meets the hub or the api-server restarting is not a failure yet.
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1), "on_failure_callback": _alert,
                  "show_return_value_in_logs": False},
    doc_md=__doc__,
)
def housekeeping():
    @task
    def retention_purge() -> dict:
        from hiresync.privacy.retention import purge
        from hiresync.config.settings import Settings

        return purge(Settings.from_env(), actor="airflow")

    @task
    def reap_dead_runs() -> dict:
        """Runs whose process died: marked failed, their staging (encrypted personal data) removed."""
        from hiresync.config.settings import Settings
        from hiresync.pipeline.lock import reap

        return {"reaped": reap(Settings.from_env())}

    retention_purge()
    reap_dead_runs()


housekeeping()

"""Weekly HR report: every Monday 09:00 Beijing time, the past week's report (HTML + Excel) for the
user policy.yaml `report_access.weekly_user` names, and its key figures and link through the alert
channels (e-mail, DingTalk / WeCom / Feishu)."""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import dag, get_current_context, task


def _alert(context) -> None:
    """on_failure_callback: e-mail and chat alert (policy.yaml `alerts:`); never raises."""
    from hiresync.monitor.alerts import on_failure

    on_failure(context)


@dag(
    dag_id="hiresync_report",
    description="The weekly HR report and its key figures to the alert channels",
    schedule="0 1 * * 1",  # Monday 01:00 UTC = 09:00 Asia/Shanghai
    start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["hiresync", "report"],
    default_args={"on_failure_callback": _alert},
    doc_md=__doc__,
)
def hr_report():
    @task
    def weekly_report() -> dict:
        from zoneinfo import ZoneInfo

        from hiresync.config.settings import Settings
        from hiresync.report.weekly import weekly

        settings = Settings.from_env()
        ctx = get_current_context()
        moment = ctx.get("data_interval_end") or ctx.get("logical_date") or datetime.now(timezone.utc)
        end = moment.astimezone(ZoneInfo(settings.timezone)).date()
        out = weekly(settings, end.fromordinal(end.toordinal() - 1))  # the week up to yesterday
        return {"html": out["html"], "sent": out["sent"], "volume": out["figures"]["volume"]}

    weekly_report()


hr_report()

"""The weekly HR report (DAG hiresync_report): the past week's report written under var/reports/,
and its key figures with a link sent through the alert channels that exist (policy.yaml `alerts:`:
e-mail, DingTalk / WeCom / Feishu). The message holds aggregates only, never a name."""

from __future__ import annotations

from datetime import date, timedelta

from hiresync.config.settings import Settings
from hiresync.errors import ConfigError
from hiresync.monitor.alerts import Alert, load_alert_config, scrub, send
from hiresync.report.access import viewer_for, weekly_settings
from hiresync.report.render import Report, build, write


def _pct(v) -> str:
    return "—" if v is None else f"{v:.1%}"


def key_figures(report: Report, start: date, end: date, where: str) -> Alert:
    f = report.figures
    title = f"HireSync 每周 HR 报表 {start} 至 {end}"
    lines = [title]
    if not f.get("volume"):
        lines.append("本周没有 AI 面试数据。")
    else:
        lines.append(f"AI 面试量: {f['volume']}，AI 通过率: {_pct(f.get('pass_rate'))}")
        if f.get("funnel"):
            lines.append("招聘漏斗: " + " → ".join(f"{k} {v}" for k, v in f["funnel"].items()))
        lines.append(f"AI 通过后入职比例: {_pct(f.get('hired_share'))}；"
                     f"AI 未通过经复核被推翻比例: {_pct(f.get('overturned_share'))}")
    lines.append(f"完整报表: {where}")
    return Alert(scrub(title), scrub("\n".join(lines)))


def weekly(settings: Settings, end: date) -> dict:
    """The seven days up to `end` (inclusive, the group's time zone)."""
    user, link = weekly_settings(settings)
    if not user:
        raise ConfigError(str(settings.policy_file), "report_access.weekly_user",
                          "names no user whose view the weekly report is written for")
    start = end - timedelta(days=6)
    report = build(settings, viewer_for(settings, user), start, end)
    html_path, xlsx_path = write(report, settings.var_dir / "reports" / "weekly", f"hr-report-{start}-{end}")
    alert = key_figures(report, start, end, link or str(html_path))
    config = load_alert_config(settings)
    sent = send(alert, config) if config.channels else {}
    return {"html": str(html_path), "xlsx": str(xlsx_path), "sent": sent, "figures": {
        k: report.figures.get(k) for k in ("volume", "pass_rate", "hired_share", "overturned_share")}}


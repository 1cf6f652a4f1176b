"""The weekly report (DAG hiresync_report): the past week's report written, its key figures and
link sent through the chat channel (a real webhook simulator), aggregates only, no names."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from simulators.alerting import ChatWebhookSimulator
from tests.test_alerts import chat_connection, use_policy
from tests.test_report import NAMES, seed


def test_the_weekly_report_sends_its_key_figures_and_link(sqlite_settings, monkeypatch, tmp_path):
    seed(sqlite_settings)
    from hiresync.report.weekly import weekly

    with ChatWebhookSimulator("dingtalk") as sim:
        chat_connection(monkeypatch, sim)
        settings = use_policy(monkeypatch, tmp_path, "  chat: {flavour: dingtalk, connection: hiresync_alert_chat}\n")
        out = weekly(settings, date(2026, 11, 15))  # the week 11-09 .. 11-15, Beijing time
    assert out["sent"] == {"chat": "sent"} and out["figures"]["volume"] == 5
    assert Path(out["html"]).exists() and Path(out["xlsx"]).exists()
    [post] = sim.posts
    text = json.dumps(post.body, ensure_ascii=False)
    assert "每周 HR 报表 2026-11-09 至 2026-11-15" in text and "AI 面试量: 5，AI 通过率: 40.0%" in text
    assert out["html"] in text  # no link configured: the file's path
    assert not any(name in text for name in NAMES.values())


def test_the_weekly_dag_runs_in_airflow(airflow_db, sqlite_settings):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.state import DagRunState

    from tests.helpers import REPO

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["hiresync_report"]
    dag_run = dag.test()
    assert dag_run.state == DagRunState.SUCCESS
    written = list((sqlite_settings.var_dir / "reports" / "weekly").glob("*.html"))
    assert len(written) == 1 and "所选期间和部门没有数据。" in written[0].read_text(encoding="utf-8")

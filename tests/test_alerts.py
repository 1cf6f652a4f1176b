"""Failure alerts (hiresync.monitor.alerts) to a real chat webhook receiver and a real SMTP server on
loopback; a failing DAG run alerts through its on_failure_callback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging

import pytest

from hiresync.monitor.alerts import AlertConfig, failure_alert, load_alert_config, on_failure, send
from hiresync.errors import ConfigError
from hiresync.pipeline.runner import run_source
from hiresync.config.settings import Settings
from hiresync.monitor.sync_status import sync_status
from simulators.alerting import ChatWebhookSimulator, SmtpSink
from tests.helpers import REPO, connect, leaks, personal_values

SIGNING_SECRET = "SEC-robot-signing-secret"


def use_policy(monkeypatch, tmp_path, alerts_yaml: str) -> Settings:
    """The repo's policy.yaml with the given `alerts:` section."""
    text = (REPO / "policy.yaml").read_text(encoding="utf-8").split("\nalerts:")[0]
    policy = tmp_path / "policy.yaml"
    policy.write_text(text + "\nalerts:\n" + alerts_yaml, encoding="utf-8")
    monkeypatch.setenv("HIRESYNC_POLICY", str(policy))
    return Settings.from_env()


def chat_connection(monkeypatch, sim: ChatWebhookSimulator, secret: str | None = SIGNING_SECRET) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_HIRESYNC_ALERT_CHAT",
                       json.dumps({"conn_type": "http", "host": sim.hook_url, "password": secret}))


def sample_alert(sqlite_settings, aiview, monkeypatch):
    connect(monkeypatch, aiview, password="expired-secret")
    with pytest.raises(Exception) as err:
        run_source("aiview", sqlite_settings)
    connect(monkeypatch, aiview)
    return failure_alert(dag_id="hiresync_sync_aiview", run_id="manual__1", task_id="extract", try_number=3,
                         cause=str(err.value), source="aiview", sync=sync_status(sqlite_settings))


@pytest.mark.parametrize("flavour", ["dingtalk", "wecom", "feishu"])
def test_each_chat_flavour_gets_its_json_shape_signed_without_secrets(sqlite_settings, aiview, monkeypatch, flavour):
    alert = sample_alert(sqlite_settings, aiview, monkeypatch)
    with ChatWebhookSimulator(flavour) as sim:
        chat_connection(monkeypatch, sim)
        assert send(alert, AlertConfig(chat={"flavour": flavour, "connection": "hiresync_alert_chat"})) == {"chat": "sent"}
    [post] = sim.posts
    body = post.body
    if flavour == "feishu":
        assert body["msg_type"] == "text" and set(body) == {"msg_type", "content", "timestamp", "sign"}
        text = body["content"]["text"]
        expected = hmac.new(f"{body['timestamp']}\n{SIGNING_SECRET}".encode(), b"", hashlib.sha256).digest()
        assert base64.b64decode(body["sign"]) == expected
    else:
        assert body["msgtype"] == "text" and set(body) == {"msgtype", "text"}
        text = body["text"]["content"]
        if flavour == "dingtalk":
            ts, sign = post.query["timestamp"][0], post.query["sign"][0]
            assert base64.b64decode(sign) == hmac.new(SIGNING_SECRET.encode(), f"{ts}\n{SIGNING_SECRET}".encode(),
                                                      hashlib.sha256).digest()
    assert text.startswith("HireSync 同步失败: 来源 aiview")
    assert "DAG: hiresync_sync_aiview" in text and "运行: manual__1" in text and "任务: extract (第 3 次尝试)" in text
    assert "credentials refused" in text and "来源状态: 失败" in text and "凭据被拒绝" in text
    sent = json.dumps(post.body, ensure_ascii=False)
    assert SIGNING_SECRET not in sent and "expired-secret" not in sent and aiview.client_secret not in sent
    assert not leaks(sent, personal_values(aiview.records()))


def test_the_email_arrives_in_chinese_without_personal_data(sqlite_settings, aiview, monkeypatch):
    alert = sample_alert(sqlite_settings, aiview, monkeypatch)
    with SmtpSink() as sink:
        cfg = {"host": "127.0.0.1", "port": sink.port, "security": "none", "from": "hiresync@example.com",
               "to": ["hr-it@example.com", "ops@example.com"]}
        assert send(alert, AlertConfig(email=cfg)) == {"email": "sent"}
    [mail] = sink.mails
    assert mail.recipients == ["hr-it@example.com", "ops@example.com"]
    msg = mail.message
    assert msg["Subject"] == "HireSync 同步失败: 来源 aiview"
    body = msg.get_content()
    assert "credentials refused" in body and "任务: extract" in body and "凭据被拒绝" in body
    assert not leaks(mail.data.decode("utf-8", "replace") + body, personal_values(aiview.records()))


def test_personal_data_in_a_cause_is_masked():
    alert = failure_alert(dag_id="d", run_id="r", task_id="t", try_number=1, source=None, sync=None,
                          cause="bad row 110101199003077777 13812345678 zhang.san@example.com https://v.example.com/x/1")
    assert "110101199003077777" not in alert.text and "110101********7777" in alert.text
    assert "13812345678" not in alert.text and "zhang.san@" not in alert.text and "/x/1" not in alert.text


def test_personal_data_next_to_chinese_text_in_a_cause_is_masked():
    alert = failure_alert(dag_id="d", run_id="r", task_id="t", try_number=1, source=None, sync=None,
                          cause="目标拒绝: 身份证11010519491231002X与手机号15631182714已注册, 邮箱wang.fang@163.com已占用")
    assert "11010519491231002X" not in alert.text and "110105********002X" in alert.text
    assert "15631182714" not in alert.text and "156****2714" in alert.text
    assert "wang.fang" not in alert.text and "已注册" in alert.text


def test_a_failing_channel_neither_raises_nor_stops_the_other_nor_logs_a_secret(sqlite_settings, aiview, monkeypatch,
                                                                              caplog):
    alert = sample_alert(sqlite_settings, aiview, monkeypatch)
    with ChatWebhookSimulator("wecom") as sim, SmtpSink() as sink:
        chat_connection(monkeypatch, sim)
        sim.reject = True
        email = {"host": "127.0.0.1", "port": sink.port, "from": "a@example.com", "to": ["b@example.com"]}
        with caplog.at_level(logging.WARNING, logger="hiresync.monitor.alerts"):
            out = send(alert, AlertConfig(email=email, chat={"flavour": "wecom", "connection": "hiresync_alert_chat"}))
        assert out == {"email": "sent", "chat": "chat (wecom): HTTP 200, code 310000"} and len(sink.mails) == 1
        hook = sim.hook_url
    # The robot is gone: a connection error names the channel, not the URL that carries the token.
    with caplog.at_level(logging.WARNING, logger="hiresync.monitor.alerts"):
        out = send(alert, AlertConfig(chat={"flavour": "wecom", "connection": "hiresync_alert_chat"}))
    assert out["chat"].startswith("chat (wecom): cannot reach the webhook (ConnectionError")
    assert "wecom-key-secret" not in caplog.text and hook not in caplog.text and SIGNING_SECRET not in caplog.text
    assert "code 310000" in caplog.text


def test_alert_config_is_schema_checked_and_holds_no_secret(monkeypatch, tmp_path):
    settings = use_policy(monkeypatch, tmp_path, "  chat: {flavour: slack, connection: c}\n")
    with pytest.raises(ConfigError, match=r"alerts.chat.flavour"):
        load_alert_config(settings)
    settings = use_policy(monkeypatch, tmp_path, "  chat: {flavour: feishu, connection: c, url: 'https://x'}\n")
    with pytest.raises(ConfigError, match=r"alerts.chat: unknown key"):
        load_alert_config(settings)
    settings = use_policy(monkeypatch, tmp_path, "  email: {host: h, from: a@b.c, to: [d@e.f], password: x}\n")
    with pytest.raises(ConfigError, match=r"alerts.email: unknown key"):
        load_alert_config(settings)
    assert load_alert_config(use_policy(monkeypatch, tmp_path, "")).channels == ()


def test_a_callback_with_broken_context_or_config_never_raises(monkeypatch, tmp_path):
    use_policy(monkeypatch, tmp_path, "  chat: {flavour: dingtalk, connection: hiresync_nowhere}\n")
    assert on_failure({}) is not None  # no ti, no dag, no exception
    out = on_failure({"dag": None, "run_id": "r", "exception": ValueError("x")})
    assert "chat" in out and "not configured" in out["chat"]


def test_a_failed_dag_run_alerts_by_chat_and_email_once_per_failed_step(airflow_db, sqlite_settings, aiview,
                                                                       monkeypatch, tmp_path):
    from airflow.utils.state import DagRunState

    from tests.test_dags import dagbag

    with ChatWebhookSimulator("feishu") as sim, SmtpSink() as sink:
        chat_connection(monkeypatch, sim, secret=None)
        use_policy(monkeypatch, tmp_path,
                   f"  email: {{host: 127.0.0.1, port: {sink.port}, from: hiresync@example.com, to: [hr@example.com]}}\n"
                   "  chat: {flavour: feishu, connection: hiresync_alert_chat}\n")
        aiview.outage = True
        dag_run = dagbag().dags["hiresync_sync_aiview"].test()
        assert dag_run.state == DagRunState.FAILED
        # dag.test() runs task callbacks in-process, like a worker: extract alerted (after its
        # retries); data_docs, which fails because extract did, did not alert a second time.
        assert len(sim.posts) == 1 and len(sink.mails) == 1
    text = sim.posts[0].body["content"]["text"]
    assert "sign" not in sim.posts[0].body  # no signing secret configured: unsigned
    assert "DAG: hiresync_sync_aiview" in text and f"运行: {dag_run.run_id}" in text and "任务: extract" in text
    assert "原因: source 'aiview'" in text and "503" in text and "来源状态: 失败" in text
    assert sink.mails[0].message["Subject"] == "HireSync 同步失败: 来源 aiview"
    everything = text + sink.mails[0].data.decode("utf-8", "replace")
    assert not leaks(everything, personal_values(aiview.records())) and aiview.client_secret not in everything

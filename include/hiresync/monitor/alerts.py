"""Failure alerts: e-mail (SMTP) and a chat robot webhook (DingTalk, WeCom or Feishu).

Channels are `alerts:` in policy.yaml (schema-checked). The YAML holds no secret: the SMTP login
and password and the chat webhook URL (its access token is in the URL) and signing secret come from
Airflow Connections (or their AIRFLOW_CONN_* environment variables). Messages are in Chinese for
HR and name the DAG, run and task, the cause (our own clean error messages, scrubbed of anything
shaped like personal data) and the open issues of hiresync.monitor.sync_status. A channel that fails is
logged by its name and the error's type only (a requests error can quote the webhook URL and so its
token) and never stops the other channel, nor raises out of the Airflow callback.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import smtplib
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from urllib.parse import quote_plus

from hiresync.config.files import load_yaml_checked
from hiresync.errors import HireSyncError
from hiresync.config.settings import Settings
from hiresync.privacy.pii import mask_text

log = logging.getLogger("hiresync.monitor.alerts")

FLAVOURS = ("dingtalk", "wecom", "feishu")
STATE_ZH = {"syncing": "同步中", "done": "已完成", "failed": "失败", "partially_synced": "部分同步",
            "frozen": "已冻结", "paused": "已暂停", "not_synced": "尚未同步"}
_SCHEMA = {"type": "object", "properties": {"alerts": {
    "type": ["object", "null"], "additionalProperties": False,
    "properties": {
        "email": {
            "type": "object", "additionalProperties": False, "required": ["host", "from", "to"],
            "properties": {
                "host": {"type": "string", "minLength": 1},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "security": {"enum": ["none", "starttls", "ssl"]},
                "from": {"type": "string", "pattern": "@"},
                "to": {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": "@"}},
                # Airflow Connection with the SMTP login/password; none: the server takes mail unauthenticated.
                "connection": {"type": "string"},
                "timeout_seconds": {"type": "number", "exclusiveMinimum": 0},
            },
        },
        "chat": {
            "type": "object", "additionalProperties": False, "required": ["flavour", "connection"],
            "properties": {
                "flavour": {"enum": list(FLAVOURS)},
                # Airflow Connection: host (or extra.url) = the robot's webhook URL; password = the
                # robot's signing secret (DingTalk/Feishu "加签"), if it has one.
                "connection": {"type": "string"},
                "timeout_seconds": {"type": "number", "exclusiveMinimum": 0},
            },
        },
    },
}}}


@dataclass(frozen=True)
class Alert:
    title: str
    text: str


@dataclass(frozen=True)
class AlertConfig:
    email: dict | None = None
    chat: dict | None = None
    channels: tuple[str, ...] = field(default=())


def load_alert_config(settings: Settings) -> AlertConfig:
    doc = load_yaml_checked(settings.policy_file, _SCHEMA) if settings.policy_file.exists() else {}
    section = (doc or {}).get("alerts") or {}
    return AlertConfig(section.get("email"), section.get("chat"), tuple(k for k in ("email", "chat") if section.get(k)))


# -- the message -------------------------------------------------------------------------------------
def scrub(text: str) -> str:
    """Nothing personal reaches a mailbox or a chat group even if a message quoted it."""
    return "\n".join(mask_text(line) for line in text.split("\n"))


def failure_alert(*, dag_id: str, run_id: str, task_id: str | None, try_number: int | None, cause: str,
                  source: str | None, sync: dict | None) -> Alert:
    """The alert for a failed task: who, where, why, and what is open (no personal data)."""
    src = (sync or {}).get("sources", {}).get(source) if source else None
    title = f"HireSync 同步失败: 来源 {source}" if source else f"HireSync 任务失败: {dag_id}"
    lines = [title, f"DAG: {dag_id}", f"运行: {run_id}"]
    if task_id:
        lines.append(f"任务: {task_id}" + (f" (第 {try_number} 次尝试)" if try_number else ""))
    lines.append(f"原因: {cause}")
    if src:
        lines.append(f"来源状态: {STATE_ZH.get(src['state'], src['state'])}")
    issues = _relevant_issues(sync, source)
    lines.append(f"未解决问题 ({len(issues)}):" if issues else "未解决问题: 无")
    lines += [f"- {i['summary_zh']}" for i in issues]
    lines.append(f"时间: {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC;详情: hiresync status")
    return Alert(scrub(title), scrub("\n".join(lines)))


def _relevant_issues(sync: dict | None, source: str | None) -> list[dict]:
    if not sync:
        return []
    if not source or source not in sync["sources"]:
        return list(sync["issues"])
    targets = set(sync.get("source_targets", {}).get(source, sync["targets"]))
    return [i for i in sync["issues"] if (i["scope"] == "source" and i["subject"] == source)
            or (i["scope"] == "target" and i["subject"] in targets)]


# -- channels ----------------------------------------------------------------------------------------
class ChannelError(Exception):
    """A channel could not deliver; the message names the channel and the cause, never a secret."""


def chat_payload(flavour: str, alert: Alert, secret: str | None = None, now: float | None = None) -> tuple[dict, dict]:
    """(JSON body, extra query parameters) in the robot's own format, signed if it has a secret."""
    now = time.time() if now is None else now
    if flavour == "feishu":
        body: dict = {"msg_type": "text", "content": {"text": alert.text}}
        if secret:  # Feishu: HMAC-SHA256 keyed by "timestamp\nsecret" over nothing, in the body
            ts = str(int(now))
            body.update(timestamp=ts, sign=base64.b64encode(
                hmac.new(f"{ts}\n{secret}".encode(), b"", hashlib.sha256).digest()).decode())
        return body, {}
    body = {"msgtype": "text", "text": {"content": alert.text}}  # DingTalk and WeCom share this shape
    if flavour == "dingtalk" and secret:  # DingTalk: HMAC-SHA256 of "timestamp\nsecret" keyed by the secret, in the URL
        ts = str(int(now * 1000))
        sign = base64.b64encode(hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()).decode()
        return body, {"timestamp": ts, "sign": sign}
    return body, {}


def send_chat(cfg: dict, alert: Alert) -> None:
    import requests

    from hiresync.config.connections import get_connection

    conn = get_connection(cfg["connection"])
    url = conn.extra.get("url") or conn.host
    if not url:
        raise ChannelError(f"chat: connection {cfg['connection']!r} has no webhook URL (host or extra.url)")
    body, params = chat_payload(cfg["flavour"], alert, conn.password)
    if params:
        url += ("&" if "?" in url else "?") + "&".join(f"{k}={quote_plus(v)}" for k, v in params.items())
    try:
        resp = requests.post(url, json=body, timeout=cfg.get("timeout_seconds", 10))
    except requests.RequestException as exc:
        raise ChannelError(f"chat ({cfg['flavour']}): cannot reach the webhook ({type(exc).__name__})") from None
    try:
        answer = resp.json()
    except ValueError:
        answer = {}
    # The robots answer 200 with an error code in the body: errcode (DingTalk, WeCom), code (Feishu).
    code = answer.get("errcode", answer.get("code", answer.get("StatusCode", 0))) if isinstance(answer, dict) else 0
    if resp.status_code >= 300 or code not in (0, None):
        raise ChannelError(f"chat ({cfg['flavour']}): HTTP {resp.status_code}, code {code}")


def send_email(cfg: dict, alert: Alert) -> None:
    from hiresync.config.connections import get_connection

    conn = get_connection(cfg["connection"]) if cfg.get("connection") else None
    security = cfg.get("security", "starttls" if cfg.get("port", 25) == 587 else "none")
    port = cfg.get("port", 465 if security == "ssl" else 25)
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = alert.title, cfg["from"], ", ".join(cfg["to"])
    msg.set_content(alert.text)
    timeout = cfg.get("timeout_seconds", 10)
    try:
        smtp_class = smtplib.SMTP_SSL if security == "ssl" else smtplib.SMTP
        with smtp_class(cfg["host"], port, timeout=timeout) as smtp:
            if security == "starttls":
                smtp.starttls()
            if conn is not None and conn.login:
                smtp.login(conn.login, conn.password or "")
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        code = getattr(exc, "smtp_code", None)
        raise ChannelError(f"email: {cfg['host']}:{port} {type(exc).__name__}" + (f" {code}" if code else "")) from None


def send(alert: Alert, config: AlertConfig) -> dict[str, str]:
    """Every configured channel; returns channel -> "sent" or the cause. Never raises."""
    outcome: dict[str, str] = {}
    for channel, fn, cfg in (("email", send_email, config.email), ("chat", send_chat, config.chat)):
        if not cfg:
            continue
        try:
            fn(cfg, alert)
            outcome[channel] = "sent"
        except (ChannelError, HireSyncError) as exc:  # ours: clean messages (a connection not configured...)
            outcome[channel] = f"{channel}: {exc}" if isinstance(exc, HireSyncError) else str(exc)
        except Exception as exc:  # noqa: BLE001 - a message could quote a secret: its type only
            outcome[channel] = f"{channel}: {type(exc).__name__}"
        if outcome[channel] != "sent":
            log.warning("alert not sent: %s", outcome[channel])
    return outcome


# -- the Airflow callback ----------------------------------------------------------------------------
def on_failure(context) -> dict[str, str]:
    """`on_failure_callback` of the HireSync DAGs. Never raises: an alert must not fail a task."""
    try:
        return _on_failure(context)
    except Exception as exc:  # noqa: BLE001
        log.warning("alert not sent: %s", type(exc).__name__)
        return {"error": type(exc).__name__}


def _on_failure(context) -> dict[str, str]:
    settings = Settings.from_env()
    config = load_alert_config(settings)
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    run_id = context.get("run_id") or getattr(ti, "run_id", "?")
    source = dag_id.removeprefix("hiresync_sync_") if dag_id.startswith("hiresync_sync_") else None
    exc = context.get("exception")
    cause, sync = _cause(exc), None
    try:
        from hiresync.hub.models import Run
        from hiresync.hub.store import transaction
        from hiresync.config.sources import load_sources
        from hiresync.monitor.sync_status import sync_status

        sync = sync_status(settings)
        if source:
            sync["source_targets"] = {n: list(c.targets) for n, c in load_sources(settings).items()}
            with transaction(settings.hub_url) as s:
                run = s.get(Run, f"{source}__{run_id}")
                if run is not None and run.error and not _ours(exc):  # the run kept the clean reason
                    cause = run.error
    except Exception as exc:  # noqa: BLE001 - the hub may be what failed; alert with what we have
        log.warning("alert without sync status: %s", type(exc).__name__)
    alert = failure_alert(dag_id=dag_id, run_id=str(run_id), task_id=getattr(ti, "task_id", None),
                          try_number=getattr(ti, "try_number", None), cause=cause, source=source, sync=sync)
    if not config.channels:
        log.info("no alert channel configured (alerts: in %s)", settings.policy_file)
        return {}
    return send(alert, config)


def _ours(exc) -> bool:
    from connectors.errors import SourceError
    from hiresync.errors import HireSyncError

    return isinstance(exc, (HireSyncError, SourceError))


def _cause(exc: BaseException | str | None) -> str:
    """Our own errors carry clean messages; anything else only its type (its message may quote data)."""
    if exc is None:
        return "未知"
    if isinstance(exc, str):  # Airflow's own reason (a task killed, timed out): no record data
        return exc[:300]
    return str(exc) if _ours(exc) else type(exc).__name__

"""Sync state and open issues per source and per target, in the manner of unified HR APIs.

Nothing here is stored: every state and issue is derived from the hub tables as they are now
(runs, source_state, quarantine, outbox), so an issue resolves itself when its cause goes away (a
later run that gets through, a dead letter retried and sent, an outbox drained). No personal data:
ids, counts, times and our own clean error messages only.

Source states: frozen (schema drift: a person checks, then `hiresync source unfreeze <source>`; an
open `source_frozen` issue says so), paused (sources.yaml `paused: true`, or source_state paused),
syncing (a run in progress), done, failed, partially_synced (loaded, but delivery failing, dead
letters of its records, or too much of the batch quarantined), not_synced (never ran).
Target states: failed (rows waiting for a retry after a failure), partially_synced (dead letters),
syncing (rows queued or in flight), done, not_synced (nothing ever queued).
Thresholds are `monitor:` in policy.yaml.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from hiresync.config.files import load_yaml_checked
from connectors.rest.profile import DEFAULT_FUTURE_TOLERANCE
from hiresync.hub.models import Outbox, Run, SourceState, Watermark
from hiresync.hub.store import transaction
from hiresync.config.settings import Settings
from hiresync.config.sources import load_sources

SOURCE_STATES = ("syncing", "done", "failed", "partially_synced", "frozen", "paused", "not_synced")
TARGET_STATES = ("syncing", "done", "failed", "partially_synced", "not_synced")
# What connectors.rest.auth / source.py and connectors.targets.rest say when credentials are refused.
_CREDENTIALS = re.compile(r"credentials refused|access refused")
_TARGET_CREDENTIALS = re.compile(r"delivery to '([a-z][a-z0-9_]*)' stopped: credentials refused")

_THRESHOLDS = {
    "quarantine_partial_share": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    "quarantine_spike_factor": {"type": "number", "minimum": 1},
    "quarantine_spike_min_share": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    "quarantine_spike_min_rows": {"type": "integer", "minimum": 1},
    "quarantine_history_runs": {"type": "integer", "minimum": 1},
    "outbox_pending_max": {"type": "integer", "minimum": 1},
    "outbox_oldest_minutes": {"type": "number", "exclusiveMinimum": 0},
    "refusals_min": {"type": "integer", "minimum": 1},
    "stale_run_minutes": {"type": "number", "exclusiveMinimum": 0},
}
_SCHEMA = {"type": "object", "properties": {"monitor": {
    "type": ["object", "null"], "additionalProperties": False, "properties": _THRESHOLDS}}}


@dataclass(frozen=True)
class Thresholds:
    quarantine_partial_share: float = 0.2  # a run quarantining more than this share is only partially synced
    quarantine_spike_factor: float = 3.0  # spike: the last run's share above factor x the recent average...
    quarantine_spike_min_share: float = 0.1  # ...and at least this share (1 in 300 after 0 is no spike)
    quarantine_spike_min_rows: int = 20  # smaller batches are not judged
    quarantine_history_runs: int = 10  # how many earlier runs make the average
    outbox_pending_max: int = 1000  # growing outbox: more rows pending for a target than this...
    outbox_oldest_minutes: float = 60  # ...or the oldest pending row older than this
    refusals_min: int = 1  # dead letters at a target before it is an issue
    stale_run_minutes: float = 180  # an "extracting" run older than this is no longer syncing: it died


def load_thresholds(settings: Settings) -> Thresholds:
    doc = load_yaml_checked(settings.policy_file, _SCHEMA) if settings.policy_file.exists() else {}
    return Thresholds(**((doc or {}).get("monitor") or {}))


@dataclass(frozen=True)
class Issue:
    code: str  # source_frozen, expired_credentials, repeated_refusals, quarantine_spike, growing_outbox, future_watermark
    scope: str  # source | target
    subject: str  # the source or target name
    detail: str  # English, for engineers
    summary_zh: str  # Chinese, for HR-facing alerts
    since: str | None = None  # ISO time the cause was first seen, when known

    def as_dict(self) -> dict:
        return asdict(self)


def sync_status(settings: Settings, now: datetime | None = None, thresholds: Thresholds | None = None) -> dict:
    """{"sources": {name: {state, reason, issues}}, "targets": {name: {state, reason, issues}}, "issues": [...]}.
    `now` is the clock (tests move it instead of waiting)."""
    now = now or datetime.now(timezone.utc)
    th = thresholds or load_thresholds(settings)
    sources = load_sources(settings)
    out: dict = {"sources": {}, "targets": {}}
    with transaction(settings.hub_url) as s:
        latest_runs = {}
        for name, cfg in sources.items():
            runs = list(s.scalars(select(Run).where(Run.source == name).order_by(Run.started_at.desc())
                                  .limit(th.quarantine_history_runs + 1)))
            latest_runs[name] = runs[0] if runs else None
            out["sources"][name] = _source(s, cfg, runs, now, th)
        targets = sorted({t for cfg in sources.values() for t in cfg.targets}
                         | set(s.scalars(select(Outbox.target).distinct())))
        for target in targets:
            out["targets"][target] = _target(s, target, latest_runs, now, th)
    out["issues"] = [i for part in ("sources", "targets") for v in out[part].values() for i in v["issues"]]
    return out


# -- sources -----------------------------------------------------------------------------------------
def _future_watermark(s, name: str, now: datetime) -> Issue | None:
    """A watermark ahead of the clock (set by a far-future record before such records were
    quarantined) silently ends the feed: every later run asks only for what is newer than it."""
    mark = s.get(Watermark, name)
    if mark is None or mark.cursor_value <= now + timedelta(seconds=DEFAULT_FUTURE_TOLERANCE):
        return None
    return Issue("future_watermark", "source", name,
                 f"the watermark ({mark.cursor_value:%Y-%m-%d %H:%M} UTC) is ahead of the clock, so later changes "
                 f"are not pulled; reset it with `hiresync source reset-watermark {name}`",
                 f"来源 {name} 的同步水位线晚于当前时间,之后的变更不会被拉取;请运行 hiresync source reset-watermark {name}",
                 _iso(mark.updated_at))



def _source(s, cfg, runs: list[Run], now: datetime, th: Thresholds) -> dict:
    name = cfg.name
    last = runs[0] if runs else None
    issues: list[Issue] = []
    if last is not None and last.status == "failed" and last.error and _CREDENTIALS.search(last.error) \
            and not _TARGET_CREDENTIALS.search(last.error):
        issues.append(Issue("expired_credentials", "source", name, f"the last run was refused: {last.error}",
                            f"来源 {name} 的凭据被拒绝(可能已过期),请检查 Airflow 连接", _iso(last.started_at)))
    spike = _quarantine_spike(name, runs, th)
    if spike:
        issues.append(spike)
    ahead = _future_watermark(s, name, now)
    if ahead:
        issues.append(ahead)
    dead = s.scalar(select(func.count()).select_from(Outbox).join(Run, Run.id == Outbox.run_id)
                    .where(Run.source == name, Outbox.status == "dead")) or 0

    state_row = s.get(SourceState, name)
    if state_row is not None and state_row.state == "frozen":
        state, reason = "frozen", state_row.reason or "no reason given"
        unfreeze = f"hiresync source unfreeze {name}"
        issues.insert(0, Issue("source_frozen", "source", name,
                               f"frozen after run {state_row.run_id}: {reason}; nothing of that run was loaded. "
                               f"Check the vendor's data and the mapping, then run `{unfreeze}`",
                               f"来源 {name} 因数据结构变化已冻结,该批次未入库;核查供应商数据与映射后执行 {unfreeze}",
                               _iso(state_row.updated_at)))
    elif cfg.paused or (state_row is not None and state_row.state == "paused"):
        state, reason = "paused", ("paused in sources.yaml" if cfg.paused
                                   else f"paused: {state_row.reason or 'no reason given'}")
    elif last is None:
        state, reason = "not_synced", "no run yet"
    elif last.status == "extracting" and now - last.started_at < timedelta(minutes=th.stale_run_minutes):
        state, reason = "syncing", f"run {last.id} in progress"
    elif last.status in ("failed", "extracting"):
        state, reason = "failed", last.error or f"run {last.id} stopped without finishing"
    elif last.status == "loaded":
        state, reason = "partially_synced", last.error or "loaded, delivery not finished"
    elif dead:
        state, reason = "partially_synced", f"{dead} records refused by a target (dead letters)"
    elif last.pulled and last.quarantined / last.pulled > th.quarantine_partial_share:
        state, reason = "partially_synced", (f"{last.quarantined} of {last.pulled} records quarantined "
                                             f"(> {th.quarantine_partial_share:.0%})")
    else:
        state, reason = "done", None
    return {"state": state, "reason": reason, "dead_letters": dead, "issues": [i.as_dict() for i in issues]}


def _quarantine_spike(name: str, runs: list[Run], th: Thresholds) -> Issue | None:
    finished = [r for r in runs if r.status in ("loaded", "success") and r.pulled]
    if not runs or not finished or finished[0] is not runs[0]:  # only the last run counts: a spike passes
        return None
    last, history = finished[0], finished[1:]
    if last.pulled < th.quarantine_spike_min_rows or not history:
        return None
    share = last.quarantined / last.pulled
    average = sum(r.quarantined / r.pulled for r in history) / len(history)
    if share < th.quarantine_spike_min_share or share <= th.quarantine_spike_factor * average:
        return None
    return Issue("quarantine_spike", "source", name,
                 f"run {last.id} quarantined {last.quarantined} of {last.pulled} ({share:.0%}); "
                 f"average of the {len(history)} runs before: {average:.0%}",
                 f"来源 {name} 隔离记录激增: 最近一次 {share:.0%},此前平均 {average:.0%},请检查供应商数据格式",
                 _iso(last.started_at))


# -- targets -----------------------------------------------------------------------------------------
def _target(s, target: str, latest_runs: dict[str, Run | None], now: datetime, th: Thresholds) -> dict:
    counts = dict(s.execute(select(Outbox.status, func.count()).where(Outbox.target == target)
                            .group_by(Outbox.status)).all())
    pending, dead = counts.get("pending", 0), counts.get("dead", 0)
    retrying, oldest = s.execute(select(func.count(Outbox.last_error), func.min(Outbox.created_at))
                                 .where(Outbox.target == target, Outbox.status == "pending")).one()
    issues: list[Issue] = []
    refused_by = [r for r in latest_runs.values() if r is not None and r.error
                  and any(m.group(1) == target for m in _TARGET_CREDENTIALS.finditer(r.error))]
    if refused_by and pending:
        run = max(refused_by, key=lambda r: r.started_at)
        issues.append(Issue("expired_credentials", "target", target,
                            f"target {target!r} refused our credentials in run {run.id}; {pending} rows wait",
                            f"目标系统 {target} 拒绝了凭据(可能已过期),{pending} 条待投递,请检查 Airflow 连接",
                            _iso(run.started_at)))
    if dead >= th.refusals_min:
        codes = sorted({c for c in s.scalars(select(Outbox.response_status).where(
            Outbox.target == target, Outbox.status == "dead").distinct()) if c is not None})
        issues.append(Issue("repeated_refusals", "target", target,
                            f"{dead} records refused by {target!r} (HTTP {', '.join(map(str, codes)) or '?'}); "
                            f"see `hiresync outbox status --target {target}`, fix, then `hiresync outbox retry`",
                            f"目标系统 {target} 拒收 {dead} 条记录(死信),修正后请执行 hiresync outbox retry"))
    age = now - oldest if oldest else None
    if pending > th.outbox_pending_max or (age is not None and age > timedelta(minutes=th.outbox_oldest_minutes)):
        minutes = int(age.total_seconds() // 60) if age else 0
        issues.append(Issue("growing_outbox", "target", target,
                            f"{pending} rows pending for {target!r}, the oldest for {minutes} min "
                            f"(limits: {th.outbox_pending_max} rows, {th.outbox_oldest_minutes:g} min)",
                            f"发往 {target} 的待投递记录积压: {pending} 条,最早的已等待 {minutes} 分钟",
                            _iso(oldest)))
    if not counts:
        state, reason = "not_synced", "nothing queued yet"
    elif retrying:
        state, reason = "failed", f"{retrying} rows waiting for a retry after a failure"
    elif refused_by and pending:
        state, reason = "failed", "credentials refused"
    elif dead:
        state, reason = "partially_synced", f"{dead} dead letters"
    elif pending:
        state, reason = "syncing", f"{pending} rows queued"
    else:
        state, reason = "done", None
    return {"state": state, "reason": reason, "pending": pending, "dead": dead, "sent": counts.get("sent", 0),
            "issues": [i.as_dict() for i in issues]}


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None

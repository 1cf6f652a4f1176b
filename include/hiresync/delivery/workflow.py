"""Workflow events: the hiring chain after the AI interview (AI passed -> re-interview -> offer ->
hired), between HireSync and the group HR system, which runs that workflow.

Outgoing: `workflow.yaml` rules ("when a result's status becomes passed, send REINTERVIEW_REQUEST
to grouphr, shaped by mappings/targets/grouphr_reinterview.yaml") are evaluated in the load
transaction (`queue_events`, called by the loader for every inserted or updated result, with its
status before the change) and queued as outbox rows of kind `event`. The relay sends them like any
other row (at least once, ordered per candidate, same idempotency key on every retry); when the
target accepts one, a StatusEvent (origin hiresync, external id = the idempotency key) is written
in the transaction that marks the row sent.

Incoming: `pull` reads the group HR system's feed of status changes (re-interviewed, offer,
hired, rejected) from a little before the newest change already recorded and writes StatusEvent
rows (origin grouphr); the origin's own event id makes a repeated change harmless.

A rule applies to a source only if the source delivers to the rule's target (`targets:` in
sources.yaml): an event for a system the result itself never reaches would wait forever.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from connectors.targets.base import Outcome
from connectors.targets.shape import Shape
from hiresync import jsonfast
from hiresync.config.files import load_yaml_checked
from hiresync.errors import ConfigError, HireSyncError
from hiresync.hub.bulk import insert_rows, lookup, one_of
from hiresync.hub.models import InterviewResult, StatusEvent
from hiresync.hub.store import transaction
from hiresync.privacy.pii import Keyring
from hiresync.config.settings import Settings

STATUSES = ("passed", "failed", "pending_review", "incomplete")
STAGES = ("ai_passed", "reinterview_requested", "reinterviewed", "offer", "hired", "rejected")
FEED_OVERLAP = timedelta(minutes=10)  # re-read a little: a change the feed published late is not missed
_NAME = r"^[a-z][a-z0-9_]*$"

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "rules": {
            "type": "object",
            "propertyNames": {"pattern": _NAME},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["when", "target", "event", "mapping"],
                "properties": {
                    "description": {"type": "string"},
                    # on insert with this status, or on an update that changes the status to it
                    "when": {"type": "object", "additionalProperties": False, "required": ["status"],
                             "properties": {"status": {"enum": list(STATUSES)}}},
                    "target": {"type": "string", "pattern": _NAME},
                    "event": {"type": "string", "pattern": r"^[A-Z][A-Z0-9_]*$"},
                    "mapping": {"type": "string", "minLength": 1},
                    "path": {"type": "string", "pattern": "^/"},
                    "stage": {"enum": list(STAGES)},  # recorded when the target accepts the event
                },
            },
        },
        "feeds": {
            "type": "object",
            "propertyNames": {"pattern": _NAME},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["path", "stages"],
                "properties": {
                    "path": {"type": "string", "pattern": "^/"},
                    "page_size": {"type": "integer", "minimum": 1, "maximum": 1000},
                    # the feed's stage names -> ours
                    "stages": {"type": "object", "minProperties": 1, "additionalProperties": {"enum": list(STAGES)}},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Rule:
    name: str
    status: str
    target: str
    event: str
    mapping: str
    path: str
    stage: str


@dataclass(frozen=True)
class Feed:
    target: str
    path: str
    page_size: int
    stages: dict[str, str]


@dataclass(frozen=True)
class Workflow:
    file: str
    rules: tuple[Rule, ...]
    feeds: dict[str, Feed]


@dataclass(frozen=True)
class Change:
    """One inserted or updated result, as the loader saw it."""

    result_id: int
    candidate_id: int
    old_status: str | None  # None: inserted
    new_status: str
    content_hash: str
    version: int
    payload: dict  # the delivery payload (candidate, result, dimensions), personal data plain


def workflow_file(settings: Settings) -> Path:
    return Path(os.environ.get("HIRESYNC_WORKFLOW", settings.home / "workflow.yaml"))


def load_workflow(settings: Settings) -> Workflow:
    """The rules and feeds; no file means no workflow events. Errors name file, key, problem."""
    path = workflow_file(settings)
    if not path.exists():
        return Workflow(str(path), (), {})
    stat = path.stat()
    return _load(str(path), stat.st_mtime_ns, stat.st_size, str(settings.home))


@lru_cache(maxsize=8)
def _load(path: str, _mtime: int, _size: int, home: str) -> Workflow:
    from hiresync.delivery.targets import PROFILE_DIR

    doc = load_yaml_checked(Path(path), SCHEMA) or {}
    rules = []
    for name, r in (doc.get("rules") or {}).items():
        _check_rest_target(path, f"rules.{name}.target", Path(home) / PROFILE_DIR / f"{r['target']}.yaml")
        mapping = Path(r["mapping"]) if Path(r["mapping"]).is_absolute() else Path(home) / r["mapping"]
        if not mapping.exists():
            raise ConfigError(path, f"rules.{name}.mapping", f"no such mapping file {r['mapping']!r}")
        Shape.load(mapping)  # its own errors name the mapping file and key
        rules.append(Rule(name, r["when"]["status"], r["target"], r["event"], r["mapping"],
                          r.get("path", "/api/v1/workflow/events"), r.get("stage", "reinterview_requested")))
    feeds = {}
    for target, f in (doc.get("feeds") or {}).items():
        _check_rest_target(path, f"feeds.{target}", Path(home) / PROFILE_DIR / f"{target}.yaml")
        feeds[target] = Feed(target, f["path"], f.get("page_size", 100), dict(f["stages"]))
    return Workflow(path, tuple(rules), feeds)


def _check_rest_target(file: str, key: str, profile: Path) -> None:
    from connectors.targets.profile import TargetProfile

    if not profile.exists():
        raise ConfigError(file, key, f"unknown target (no profile {profile.name} in connectors/profiles/targets)")
    if TargetProfile.load(profile).kind != "rest":
        raise ConfigError(file, key, "workflow events go to a REST target (this one is SQL)")


# -- outgoing: queued in the load transaction ------------------------------------------------------
def event_key(rule: Rule, result_key: str, content_hash: str) -> str:
    """Deterministic per target, rule, result and content: a re-run or replay sends the same key."""
    return hashlib.sha256(f"event|{rule.target}|{rule.name}|{result_key}|{content_hash}".encode()).hexdigest()


def queue_events(s: Session, settings: Settings, keys: Keyring, source_targets: tuple[str, ...],
                 run_id: str, changes: list[Change]) -> int:
    """Outbox rows (kind `event`) for every rule a change fires; in the caller's transaction.
    Returns how many were queued (a key already in the outbox is not queued twice)."""
    from hiresync.hub.models import Outbox

    rules = [r for r in load_workflow(settings).rules if r.target in source_targets]
    _record_ai_passed(s, [c for c in changes if c.new_status == "passed" and c.old_status != "passed"])
    rows = []
    for c in changes:
        for rule in rules:
            if c.new_status != rule.status or c.old_status == rule.status:
                continue
            idem = event_key(rule, c.payload["result"]["result_key"], c.content_hash)
            payload = {**c.payload, "event": {"rule": rule.name, "type": rule.event, "mapping": rule.mapping,
                                              "path": rule.path, "stage": rule.stage}}
            rows.append(dict(target=rule.target, kind="event", result_id=c.result_id, result_version=c.version,
                             idempotency_key=idem, status="pending", run_id=run_id,
                             payload_enc=keys.encrypt(jsonfast.dumpb(payload), f"outbox:{rule.target}:{idem}",
                                                          compress=True)))
    if not rows:
        return 0
    known = set()
    for target in {r["target"] for r in rows}:  # (target, key): uq_outbox_idempotency's order
        known.update((target, k) for (k,) in lookup(s, (Outbox.idempotency_key,), Outbox.idempotency_key,
                                                    [r["idempotency_key"] for r in rows if r["target"] == target],
                                                    target=target))
    rows = [r for r in rows if (r["target"], r["idempotency_key"]) not in known]
    insert_rows(s, Outbox.__table__, rows)
    return len(rows)


def _record_ai_passed(s: Session, passed: list[Change]) -> None:
    """The chain's first stage, whatever the rules: the result became passed in this load."""
    if not passed:
        return
    now = datetime.now(timezone.utc)
    ext = {hashlib.sha256(f"ai_passed|{c.payload['result']['result_key']}|{c.content_hash}".encode()).hexdigest(): c
           for c in passed}
    known = {k for (k,) in lookup(s, (StatusEvent.external_id,), StatusEvent.external_id, ext, origin="hiresync")}
    rows = [dict(result_id=c.result_id, candidate_id=c.candidate_id, stage="ai_passed", origin="hiresync",
                 external_id=key, occurred_at=now, recorded_at=now,
                 detail={"result_key": c.payload["result"]["result_key"], "version": c.version})
            for key, c in ext.items() if key not in known]
    insert_rows(s, StatusEvent.__table__, rows)


# -- outgoing: sent by the relay -----------------------------------------------------------------
def send_events(target, items: list[tuple[str, dict]]) -> list[Outcome]:
    """(idempotency key, payload after the recipient policy) -> one Outcome each, in order; after
    an event that must wait, the later ones wait too. `target` is the relay's RestTarget: its
    session, auth and error handling (401/403 stop the target) serve events as well."""
    from connectors.targets.rest import PERMANENT, _json, _reason, _seconds

    outcomes: list[Outcome] = []
    for key, payload in items:
        meta = payload["event"]
        body = {"eventType": meta["type"], "externalKey": payload["result"]["result_key"],
                "data": _shape(meta["mapping"]).render(payload)}
        resp = target._request("POST", meta["path"], key, body)
        if isinstance(resp, Outcome):
            out = resp
        elif 200 <= resp.status_code < 300:
            ref = _json(resp).get("id")
            out = Outcome("sent", resp.status_code, ref=str(ref) if isinstance(ref, (str, int)) else None)
        elif resp.status_code in PERMANENT:
            out = Outcome("dead", resp.status_code, reason=_reason(_json(resp)) or f"HTTP {resp.status_code}")
        else:
            out = Outcome("retry", resp.status_code, reason=_reason(_json(resp)) or f"HTTP {resp.status_code}",
                          retry_after=_seconds(resp.headers.get("Retry-After")))
        outcomes.append(out)
        if out.state == "retry":
            outcomes += [out] * (len(items) - len(outcomes))
            break
    return outcomes


def _shape(path: str) -> Shape:
    """The mapping the rule named when the event was queued (relative to the project home)."""
    return _shape_at(str(Settings.from_env().resolve(path)))


@lru_cache(maxsize=16)
def _shape_at(path: str) -> Shape:
    return Shape.load(Path(path))


def record_accepted(s: Session, accepted: list[tuple[str, int | None, dict, str | None]], now: datetime) -> None:
    """StatusEvent rows for events a target accepted: (idempotency key, result id, payload,
    target ref); in the relay's transaction that marks them sent. A replayed event adds nothing."""
    if not accepted:
        return
    known = set(s.scalars(select(StatusEvent.external_id).where(
        StatusEvent.origin == "hiresync", one_of(StatusEvent.external_id, [a[0] for a in accepted]))))
    ids = [a[1] for a in accepted if a[1] is not None]
    cand = dict(s.execute(select(InterviewResult.id, InterviewResult.candidate_id)
                          .where(one_of(InterviewResult.id, ids))).all()) if ids else {}
    rows = [dict(result_id=rid, candidate_id=cand.get(rid), stage=p["event"]["stage"], origin="hiresync",
                 external_id=key, occurred_at=now, recorded_at=now,
                 detail={"rule": p["event"]["rule"], "event": p["event"]["type"], "target_ref": ref})
            for key, rid, p, ref in accepted if key not in known]
    if rows:
        s.execute(insert(StatusEvent.__table__), rows)


# -- incoming: the group HR system's status changes --------------------------------------------------
def pull(settings: Settings, target_name: str = "grouphr") -> dict:
    """Status changes since a little before the newest one recorded -> StatusEvent rows.
    Returns counts: recorded, repeated (already known), unknown (no such result here)."""
    from hiresync.delivery.targets import target_for

    wf = load_workflow(settings)
    feed = wf.feeds.get(target_name)
    if feed is None:
        raise ConfigError(wf.file, f"feeds.{target_name}", "no status feed configured for this target")
    target = target_for(target_name, settings)
    with transaction(settings.hub_url) as s:
        newest = s.scalar(select(StatusEvent.occurred_at).where(StatusEvent.origin == target_name)
                          .order_by(StatusEvent.occurred_at.desc()).limit(1))
    params = {"limit": feed.page_size}
    if newest is not None:
        params["since"] = (newest - FEED_OVERLAP).isoformat()
    counts = {"recorded": 0, "repeated": 0, "unknown": 0, "unmapped": 0}
    while True:
        items, cursor = _page(target, feed, params)
        _record_changes(settings, target_name, feed, items, counts)
        if not cursor:
            return counts
        params["cursor"] = cursor


def _page(target, feed: Feed, params: dict) -> tuple[list[dict], str | None]:
    import requests

    try:
        resp = target.session.get(target.base + feed.path, params=params, auth=target.auth, timeout=target.timeout)
    except requests.RequestException as exc:
        raise HireSyncError(f"status feed of {feed.target!r}: no answer ({type(exc).__name__})") from None
    if resp.status_code != 200:
        raise HireSyncError(f"status feed of {feed.target!r}: HTTP {resp.status_code}; nothing after it was read")
    body = resp.json()
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise HireSyncError(f"status feed of {feed.target!r}: the response has no `items` list")
    cursor = body.get("nextCursor")
    return items, str(cursor) if cursor else None


def _record_changes(settings: Settings, origin: str, feed: Feed, items: list[dict], counts: dict) -> None:
    with transaction(settings.hub_url) as s:
        known = set(s.scalars(select(StatusEvent.external_id).where(
            StatusEvent.origin == origin, one_of(StatusEvent.external_id, [str(i.get("id")) for i in items]))))
        rows = []
        for item in items:
            ext, key, stage = str(item.get("id")), str(item.get("externalKey") or ""), feed.stages.get(item.get("stage"))
            if item.get("id") is None or stage is None:
                counts["unmapped"] += 1
                continue
            if ext in known:
                counts["repeated"] += 1
                continue
            vendor, _, vendor_id = key.partition(":")
            result = s.execute(select(InterviewResult.id, InterviewResult.candidate_id).where(
                InterviewResult.vendor == vendor, InterviewResult.vendor_result_id == vendor_id)).first()
            if result is None:
                counts["unknown"] += 1
                continue
            known.add(ext)
            # the feed's free text (an interviewer's note) may name people: only the stage and ids are kept
            rows.append(dict(result_id=result.id, candidate_id=result.candidate_id, stage=stage, origin=origin,
                             external_id=ext, occurred_at=_when(item.get("occurredAt")),
                             detail={"feed_stage": item.get("stage"), "result_key": key}))
        if rows:
            s.execute(insert(StatusEvent.__table__), rows)
            counts["recorded"] += len(rows)


def _when(value) -> datetime:
    try:
        dt = datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.now(timezone.utc)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


# -- reading ---------------------------------------------------------------------------------------
def history(settings: Settings, result_key: str) -> list[dict]:
    """A result's stages, oldest first: only stage, origin, time and non-personal detail."""
    vendor, _, vendor_id = result_key.partition(":")
    if not vendor_id:
        raise HireSyncError(f"{result_key!r} is not a result key (\"vendor:vendor result id\")")
    with transaction(settings.hub_url) as s:
        result_id = s.scalar(select(InterviewResult.id).where(InterviewResult.vendor == vendor,
                                                              InterviewResult.vendor_result_id == vendor_id))
        if result_id is None:
            raise HireSyncError(f"no result {result_key!r} in the hub")
        events = s.scalars(select(StatusEvent).where(StatusEvent.result_id == result_id)
                           .order_by(StatusEvent.occurred_at, StatusEvent.id)).all()
        return [{"occurred_at": e.occurred_at.isoformat(), "stage": e.stage, "origin": e.origin,
                 "detail": e.detail or {}} for e in events]

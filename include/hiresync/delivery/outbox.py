"""The outbox relay: pending outbox rows -> a target, at least once, in order per candidate.

Rows are claimed in batches (`FOR UPDATE SKIP LOCKED` on PostgreSQL and MySQL/MariaDB so two
relays never wait on or take the same rows; on SQLite, whose writers are serialised anyway, the
lease alone), leased (`claimed_until`/`claimed_by`), sent, then marked in a second transaction.
A crash between sending and marking re-sends the rows once the lease runs out, with the same
idempotency keys, which the target absorbs: at-least-once delivery with idempotent receivers
(DESIGN.md invariant 4).

Per row: `sent` (with the target's own id, `target_ref`); `dead` at once for a permanent refusal
(400, 422), with the status code and the target's reason masked and trimmed; otherwise retried
with exponential backoff and jitter (`next_attempt_at`, at least Retry-After). Repeated failures
open a circuit for the target (per process; across processes the rows' backoff does the same).
Errors stored on a row never hold personal data: a driver's or a target's message can quote it.
"""

from __future__ import annotations

import os
import random
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import groupby
from typing import Callable

from sqlalchemy import func, or_, select, update

from connectors.targets.base import Outcome, TargetError
from connectors.targets.profile import TargetProfile
from hiresync.errors import HireSyncError
from hiresync.hub.models import InterviewResult, Outbox
from hiresync.hub.store import engine_for, reclaim_dead_rows, transaction
from hiresync.privacy.pii import Keyring, mask_text
from hiresync.privacy.recipients import RecipientPolicy, load_policy
from hiresync.config.settings import Settings
from hiresync.delivery.render import RenderError, bodies
from hiresync.delivery.targets import profile_for, target_for
from hiresync.delivery.workflow import record_accepted, send_events
from hiresync.hub.bulk import none_of, one_of, update_rows

REASON_LIMIT = 120


def target_ref(target, payload: dict) -> str:
    """The target's own id for a delivered record: what the target reports if it can, else the
    result key the SQL targets are keyed by ("vendor:vendor result id")."""
    if "result" not in payload:  # an erase request: the target's rows for this candidate are gone
        return payload["candidate_key"]
    ref_of = getattr(target, "ref_of", None)
    return str(ref_of(payload)) if ref_of else payload["result"]["result_key"]


def _send(target, rows, payloads) -> None:
    """In outbox order; consecutive upserts go as one batch, an erase request on its own."""
    for kind, group in groupby(zip(rows, payloads), key=lambda pair: pair[0].kind):
        if kind == "erase":
            for _, (_, payload) in group:
                target.erase(payload["candidate_key"], payload["result_keys"])
        else:
            target.upsert([item for _, item in group])


def _deliver(target, rows, payloads) -> list[Outcome]:
    """One Outcome per row. A SQL target takes the batch in one transaction: all or nothing."""
    if any(r.kind == "event" for r in rows):
        return _deliver_with_events(target, rows, payloads)
    if hasattr(target, "send"):
        return target.send([(r.kind, key, p) for r, (key, p) in zip(rows, payloads)])
    try:
        _send(target, rows, payloads)
    except Exception as exc:  # noqa: BLE001 - only the type is kept: a driver's message can quote data
        return [Outcome("retry", None, reason=type(exc).__name__)] * len(rows)
    return [Outcome("sent", None, ref=target_ref(target, p)) for _, p in payloads]


def _deliver_with_events(target, rows, payloads) -> list[Outcome]:
    """Workflow events (hiresync.delivery.workflow) go to the target's event endpoint, records as usual, in
    outbox order; after a row that must wait, the later ones wait too."""

    if not hasattr(target, "send"):
        return [Outcome("dead", None, reason="workflow events need a REST target")] * len(rows)
    outcomes: list[Outcome] = []
    for is_event, group in groupby(zip(rows, payloads), key=lambda pair: pair[0].kind == "event"):
        group = list(group)
        got = (send_events(target, [p for _, p in group]) if is_event
               else target.send([(r.kind, key, p) for r, (key, p) in group]))
        outcomes += got
        if any(o.state == "retry" for o in got):
            waiting = next(o for o in got if o.state == "retry")
            return outcomes + [waiting] * (len(rows) - len(outcomes))
    return outcomes


# -- circuit breaker ---------------------------------------------------------------------------------
@dataclass
class Circuit:
    """Closed until `threshold` consecutive failed batches; then open for `open_seconds`; then one
    batch is let through (half-open): success closes it, failure opens it again."""

    threshold: int
    open_seconds: float
    failures: int = 0
    open_until: datetime | None = None

    def allows(self, now: datetime) -> bool:
        return self.open_until is None or now >= self.open_until

    def record(self, ok: bool, now: datetime) -> None:
        if ok:
            self.failures, self.open_until = 0, None
            return
        self.failures += 1
        if self.failures >= self.threshold or self.open_until is not None:  # half-open probe failed
            self.open_until = now + timedelta(seconds=self.open_seconds)


CIRCUITS: dict[str, Circuit] = {}


def circuit_for(profile: TargetProfile) -> Circuit:
    return CIRCUITS.setdefault(profile.name, Circuit(profile.failure_threshold, profile.open_seconds))


# -- the relay ---------------------------------------------------------------------------------------
@dataclass
class _Batch:
    rows: list
    seen_up_to: int  # the highest outbox id this claim looked at, sent or not


# A claim's rows are rendered and sent this many at a time: a body is a whole record, so memory
# follows the part, while the claim and the record of outcomes (each a write transaction, which on
# SQLite waits for a load writing beside the relay) stay one per claim.
PART_ROWS = 500

# On PostgreSQL the outbox is vacuumed after this many claimed rows, or a tenth of all this process
# has claimed if that is more (hub.store.reclaim_dead_rows): often enough that the next rows'
# versions fill the space the last ones left, and growing with the outbox, as each vacuum reads the
# outbox's indexes whole (a fixed step would cost a million-result run its square).
RECLAIM_EVERY = 2_000


class _Reclaim:
    """Counts the rows this process's relays claimed (each leaves two dead versions: its lease, its
    outcome) and has the outbox vacuumed as they add up. Per process and hub, not per call: a relay
    beside the load calls relay() once for each batch the load commits."""

    def __init__(self) -> None:
        self._since: dict[str, int] = {}
        self._total: dict[str, int] = {}

    def claimed(self, hub_url: str, rows: int) -> None:
        since = self._since.get(hub_url, 0) + rows
        total = self._total[hub_url] = self._total.get(hub_url, 0) + rows
        if since >= max(RECLAIM_EVERY, total // 10):
            reclaim_dead_rows(engine_for(hub_url), Outbox.__tablename__)
            since = 0
        self._since[hub_url] = since


_reclaim = _Reclaim()


@dataclass
class _Outcomes:
    """What became of a claim's rows so far, in outbox order: the rows' new states, the workflow
    events the target accepted, and counts."""

    updates: list[dict] = field(default_factory=list)
    accepted: list[tuple] = field(default_factory=list)
    sent: int = 0
    waiting: int = 0
    reason: str | None = None  # the first row left for a retry: why

    def add(self, rows, payloads, outcomes: list[Outcome], now: datetime, profile: TargetProfile) -> None:
        for row, (key, payload), o in zip(rows, payloads, outcomes):
            self.updates.append({
                "id": row.id, "status": "pending" if o.state == "retry" else o.state,
                "response_status": o.http_status, "target_ref": o.ref if o.state == "sent" else None,
                "sent_at": now if o.state == "sent" else None,
                "last_error": None if o.state == "sent" else _error_text(o, payload),
                "next_attempt_at": (now + timedelta(seconds=_backoff(row.attempts + 1, o.retry_after, profile))
                                    if o.state == "retry" else None)})
            if row.kind == "event" and o.state == "sent":
                self.accepted.append((key, row.result_id, payload, o.ref))
            self.sent += o.state == "sent"  # dead letters are not failures of the relay
            if o.state == "retry":
                self.waiting += 1
                self.reason = self.reason or _error_text(o, payload)

    def untried(self, rows) -> list[int]:
        """The ids of a claim's rows that got no outcome (after a part that must wait, or a target error)."""
        tried = {u["id"] for u in self.updates}
        return [r.id for r in rows if r.id not in tried]


@dataclass(frozen=True)
class Route:
    """A target's profile, its recipient's policy and its connector: what relaying to it needs
    beside the hub. Loading them takes tens of milliseconds (YAML files checked against their
    schemas, the competency model, the EHR's schema version), so a relay that looks again and
    again (hiresync.delivery.beside) builds its routes once; a relay() call without one builds it,
    so a profile or policy edited between two runs applies to the next."""

    profile: TargetProfile
    policy: RecipientPolicy
    target: object  # EhrSqlTarget or RestTarget


def route_to(settings: Settings, target_name: str) -> Route:
    profile = profile_for(target_name, settings)
    return Route(profile, load_policy(settings, profile.recipient), target_for(target_name, settings, profile))


def relay(settings: Settings, keys: Keyring, target_name: str, batch_size: int = 500,
          now: datetime | None = None, stop: Callable[[], bool] = lambda: False, route: Route | None = None,
          handed: Callable[[list[str]], dict[str, dict]] | None = None) -> int:
    """Deliver everything that is due for one target; returns how many rows were delivered.

    Raises HireSyncError naming the target and the cause when rows had to be left for a retry,
    when the circuit is open with work waiting, or when the target is misconfigured (the rows
    then stay as they were). `now` is the clock (tests move it instead of sleeping); `stop` is
    asked before each batch (a relay beside the load ends with the load); `handed` gives the bodies
    the load handed over for rows with these idempotency keys (hiresync.delivery.beside)."""
    clock = (lambda: now) if now is not None else (lambda: datetime.now(timezone.utc))  # aware UTC: UTCDateTime
    route = route or route_to(settings, target_name)
    profile, policy, target = route.profile, route.policy, route.target
    circuit = circuit_for(profile)
    worker = f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    delivered, waiting, last_reason = 0, 0, None
    # Each claim starts after the rows the one before looked at. From the start of the queue every
    # time, a claim on PostgreSQL would step over every row relayed so far (each leaves dead
    # versions in the pending index until vacuum: the claims slowed as the run went on), and a batch
    # whose rows all wait behind earlier rows of their candidates would end the call with due rows
    # after it still unsent. A row passed over now (it waits, or failed and backs off) is the next
    # call's.
    after = 0
    while circuit.allows(clock()) and not stop():
        batch = _claim(settings, target_name, batch_size, clock(), worker, profile.lease_seconds, after)
        if batch is None:
            break
        after = batch.seen_up_to
        if not batch.rows:
            continue
        done = _Outcomes()
        try:
            for start in range(0, len(batch.rows), PART_ROWS):
                rows, payloads = _render(settings, keys, batch.rows[start:start + PART_ROWS], handed)
                if rows:
                    outcomes = _deliver(target, rows, [(key, policy.apply(p, keys)) for key, p in payloads])
                    done.add(rows, payloads, outcomes, clock(), profile)
                if done.waiting:  # the rest waits too: a candidate's records go in outbox order
                    break
        except TargetError as exc:
            _record(settings, done, clock())  # the parts sent before it are delivered
            left = done.untried(batch.rows)
            _release(settings, left)
            raise HireSyncError(f"delivery to {target_name!r} stopped: {exc.cause}; "
                                f"{len(left)} rows stay pending") from None
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM, a crash) before the outcomes were recorded: give the
            # rows back now rather than holding them, and every later row of their candidates,
            # until the lease runs out. A target that applied some of them absorbs the resend.
            _release_quietly(settings, [r.id for r in batch.rows])
            raise
        _record(settings, done, clock())
        if done.waiting:  # the parts after a row left for a retry were not tried: not leased any longer
            _release(settings, done.untried(batch.rows))
        _reclaim.claimed(settings.hub_url, len(batch.rows))
        delivered += done.sent  # dead letters are not failures of the relay: `hiresync outbox status` lists them
        waiting += done.waiting
        last_reason = done.reason or last_reason
        circuit.record(not done.waiting, clock())
    if waiting or not circuit.allows(clock()):
        state = (f"circuit open until {circuit.open_until:%H:%M:%S} UTC" if not circuit.allows(clock())
                 else "retried later with backoff")
        raise HireSyncError(f"delivery to {target_name!r} failed ({last_reason or 'circuit open'}); "
                            f"{waiting} rows stay pending and will be retried ({state}); {delivered} delivered")
    return delivered


def _claim(settings, target_name, batch_size, now, worker, lease_seconds, after: int = 0) -> _Batch | None:
    """The next due rows after outbox id `after`, leased to `worker`; None when no row is due. The
    batch holds no rows when every row looked at waits behind an earlier one."""
    due = (Outbox.target == target_name, Outbox.id > after, *_due(now))
    with transaction(settings.hub_url) as s:
        q = (select(Outbox.id, Outbox.target, Outbox.kind, Outbox.result_id, Outbox.attempts, Outbox.idempotency_key,
                    Outbox.payload_enc, Outbox.raw_payload_id, Outbox.mapping_fingerprint, Outbox.result_version)
             .where(*due).order_by(Outbox.id).limit(batch_size))
        locks = s.get_bind().dialect.name in ("postgresql", "mysql", "mariadb")
        if locks:
            q = q.with_for_update(skip_locked=True)  # a second relay takes the next rows instead of waiting
        rows = s.execute(q).all()
        if not rows:
            return None
        seen_up_to = rows[-1].id
        rows = _in_candidate_order(s, target_name, rows)
        if rows:
            ids = [r.id for r in rows]
            lease = dict(claimed_until=now + timedelta(seconds=lease_seconds), claimed_by=worker)
            if locks:  # the rows are this transaction's (FOR UPDATE): by id, touching no other row
                s.execute(update(Outbox).where(one_of(Outbox.id, ids)).values(**lease))
            else:
                # SQLite locks no row: another relay may have read the same rows and leased them
                # since, and a second lease over the first would send them twice. Leased only while
                # still due; the rows this lease did not take are the other relay's. (Not so on
                # MariaDB: the extra conditions let InnoDB scan and lock other rows: deadlocks.)
                taken = s.execute(update(Outbox).where(one_of(Outbox.id, ids), *_due(now)).values(**lease))
                if taken.rowcount != len(ids):
                    mine = set(s.scalars(select(Outbox.id).where(one_of(Outbox.id, ids), Outbox.claimed_by == worker)))
                    rows = [r for r in rows if r.id in mine]
    return _Batch(rows, seen_up_to)


def _render(settings, keys, rows: list, handed: Callable[[list[str]], dict[str, dict]] | None = None
            ) -> tuple[list, list[tuple[str, dict]]]:
    """Leased rows -> (the rows that have a body, their (idempotency key, body) pairs).

    Rendered after the claim commits, under the lease: the claim's transaction is short, so a load
    writing batches beside this relay (hiresync.delivery.beside) waits for it only briefly. A
    reference is rendered from the raw payload it names (one encrypted copy of each payload); erase
    requests and workflow events carry their own encrypted body. A row that cannot be rendered has
    nothing to send, ever: it becomes a dead letter with the reason. A body the load handed over
    stands for the rendering (`handed`, see relay)."""
    try:
        given = handed([r.idempotency_key for r in rows if r.payload_enc is None]) if handed else {}
        with transaction(settings.hub_url) as s:
            rendered = bodies(s, keys, rows, given)
    except BaseException:  # a wrong key, an interrupt: the rows go back now, not when the lease ends
        _release_quietly(settings, [r.id for r in rows])
        raise
    unrenderable = {i: str(body) for i, body in rendered.items() if isinstance(body, RenderError)}
    if unrenderable:
        with transaction(settings.hub_url) as s:
            for row_id, reason in unrenderable.items():
                s.execute(update(Outbox).where(Outbox.id == row_id).values(
                    status="dead", last_error=f"not rendered: {reason}", claimed_until=None, claimed_by=None))
        rows = [r for r in rows if r.id not in unrenderable]
    return rows, [(r.idempotency_key, rendered[r.id]) for r in rows]


def _in_candidate_order(s, target_name: str, rows: list) -> list:
    """Drop rows whose candidate has an earlier pending row outside this batch (backing off, or
    leased by another relay): a candidate's records reach the target in outbox order."""
    result_ids = [r.result_id for r in rows if r.result_id is not None]
    if not result_ids:
        return rows
    cand_of = dict(s.execute(select(InterviewResult.id, InterviewResult.candidate_id)
                             .where(one_of(InterviewResult.id, result_ids))).all())
    ids = [r.id for r in rows]
    first_outside = dict(s.execute(
        select(InterviewResult.candidate_id, func.min(Outbox.id))
        .join(InterviewResult, InterviewResult.id == Outbox.result_id)
        .where(Outbox.target == target_name, Outbox.status == "pending", Outbox.id < max(ids),
               none_of(Outbox.id, ids), one_of(InterviewResult.candidate_id, set(cand_of.values())))
        .group_by(InterviewResult.candidate_id)).all())
    return [r for r in rows
            if r.result_id is None or r.id < first_outside.get(cand_of.get(r.result_id), r.id + 1)]


def _record(settings, done: _Outcomes, now: datetime) -> None:
    """A claim's outcomes, in one transaction."""
    if not done.updates:
        return
    outbox = Outbox.__table__
    with transaction(settings.hub_url) as s:
        if done.accepted:  # the workflow stage "requested" is true once the target holds the event
            record_accepted(s, done.accepted, now)
        update_rows(s, outbox, done.updates, lambda v: dict(
            status=v.status, attempts=outbox.c.attempts + 1, response_status=v.response_status,
            target_ref=func.coalesce(v.target_ref, outbox.c.target_ref), sent_at=v.sent_at, last_error=v.last_error,
            next_attempt_at=v.next_attempt_at, claimed_until=None, claimed_by=None))


def _release(settings, ids: list[int]) -> None:
    if not ids:
        return
    with transaction(settings.hub_url) as s:
        s.execute(update(Outbox).where(one_of(Outbox.id, ids)).values(claimed_until=None, claimed_by=None))


def _release_quietly(settings, ids: list[int]) -> None:
    try:
        _release(settings, ids)
    except Exception:  # noqa: BLE001 - on the way out; the lease runs out by itself
        pass


def leased_elsewhere(settings, target_name: str, now: datetime | None = None) -> tuple[int, datetime | None]:
    """(pending rows of the target leased by a relay right now, when the last of those leases ends)."""
    now = now or datetime.now(timezone.utc)
    with transaction(settings.hub_url) as s:
        n, until = s.execute(select(func.count(), func.max(Outbox.claimed_until)).where(
            Outbox.target == target_name, Outbox.status == "pending", Outbox.claimed_until > now)).one()
    return n or 0, until


def _due(now: datetime) -> tuple:
    """A pending row a relay may claim now: not backing off after a failure, not leased."""
    return (Outbox.status == "pending", or_(Outbox.next_attempt_at.is_(None), Outbox.next_attempt_at <= now),
            or_(Outbox.claimed_until.is_(None), Outbox.claimed_until < now))


def due_rows(settings, target_names: list[str], now: datetime | None = None) -> int:
    """Rows a relay of these targets could claim now."""
    if not target_names:
        return 0
    with transaction(settings.hub_url) as s:
        return s.scalar(select(func.count()).select_from(Outbox).where(
            Outbox.target.in_(target_names), *_due(now or datetime.now(timezone.utc)))) or 0


def backing_off(settings, target_name: str, now: datetime | None = None) -> int:
    """Pending rows of the target that wait for their next attempt after a failure."""
    now = now or datetime.now(timezone.utc)
    with transaction(settings.hub_url) as s:
        return s.scalar(select(func.count()).select_from(Outbox).where(
            Outbox.target == target_name, Outbox.status == "pending", Outbox.next_attempt_at > now)) or 0


def _backoff(attempt: int, retry_after: float | None, profile: TargetProfile) -> float:
    """Exponential with jitter (half to all of the step, so relays that failed together do not
    come back together), never sooner than the target's Retry-After."""
    step = min(profile.max_backoff_seconds, profile.backoff_seconds * 2 ** (attempt - 1))
    wait = random.uniform(step / 2, step)
    if retry_after is not None:
        wait = max(wait, min(retry_after, profile.max_retry_after_seconds))
    return wait


def _error_text(o: Outcome, payload: dict) -> str:
    head = f"HTTP {o.http_status}" if o.http_status else ""
    reason = _masked(o.reason or "", payload)
    return ": ".join(p for p in (head, reason) if p) or "refused"


def _masked(reason: str, payload: dict) -> str:
    """The target's reason without the personal data it may quote, at most REASON_LIMIT chars."""
    cand = payload.get("candidate") or {}
    result = payload.get("result") or {}
    known = [cand.get("full_name"), cand.get("national_id"), cand.get("mobile"), cand.get("email"),
             result.get("video_url"), result.get("report_url")]
    return mask_text(reason, known=known, limit=REASON_LIMIT)

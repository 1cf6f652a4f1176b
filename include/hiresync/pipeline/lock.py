"""One sync per source at a time, and no dead run that looks alive.

A lease row per source (`source_locks`) works the same on SQLite, PostgreSQL and MariaDB. A CLI
run holds it as "host:pid" for its whole life; an Airflow run, whose steps are separate
processes, holds it as "airflow:host" and renews the lease at every step. A second sync of the
same source stops at once with who holds it; a holder whose process is gone (same host) or whose
lease ran out is taken over.

The reaper runs at the start of every sync and in housekeeping: a run still "extracting" that
holds no live lease died (killed, or the hub was unreachable when it failed); it is marked
failed with that reason and its staging (encrypted personal data that retention never sees) is
removed; batches its load committed stay, and the next sync over the window finds them unchanged.
A "loaded" run's data is in the hub and its outbox rows are delivered by the next relay:
only its staging goes.
"""

from __future__ import annotations

import os
import shutil
import socket
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.dialects import mysql, postgresql, sqlite

from hiresync.config.settings import Settings
from hiresync.errors import HireSyncError
from hiresync.hub.models import Run, SourceLock
from hiresync.hub.store import transaction
from hiresync.ingest.staging import Staging

AIRFLOW_LEASE = timedelta(hours=2)  # renewed at every step; one step longer than this is taken as dead
CLI_LEASE = timedelta(hours=12)  # a live CLI process is recognised by its pid; this only bounds the unknown
_NEVER = datetime(1970, 1, 1, tzinfo=timezone.utc)


class SourceBusy(HireSyncError):
    pass


def holder(airflow: bool) -> str:
    host = socket.gethostname()[:80]
    return f"airflow:{host}" if airflow else f"{host}:{os.getpid()}"


def acquire(settings: Settings, source: str, run_id: str, who: str, now: datetime | None = None) -> None:
    """Take (or renew, for the same run) the source's lease; SourceBusy if a live run holds it."""
    now = now or datetime.now(timezone.utc)
    lease = AIRFLOW_LEASE if who.startswith("airflow:") else CLI_LEASE
    with transaction(settings.hub_url) as s:
        # The lease row is there before it is read (run out, the first time), so two first holders
        # queue on its row lock. Racing to insert it instead failed as a deadlock on MariaDB (each
        # SELECT ... FOR UPDATE of the missing row took a gap lock the other's insert waited for)
        # and could as "database is locked" on SQLite (a read transaction cannot turn into a write
        # once another has written); on SQLite this write, first, takes the write lock at once.
        s.execute(_lease_row_if_missing(s.get_bind().dialect.name, source))
        lock = s.get(SourceLock, source, with_for_update=True)
        if lock.run_id != run_id and _alive(lock, now):
            raise SourceBusy(f"source {source!r} is already syncing (run {lock.run_id}, "
                             f"started {lock.acquired_at:%Y-%m-%d %H:%M:%S} UTC)")
        if lock.run_id != run_id:
            lock.acquired_at = now
        lock.run_id, lock.holder, lock.expires_at = run_id, who, now + lease


def _lease_row_if_missing(dialect: str, source: str):
    values = dict(source=source, run_id="", holder="", acquired_at=_NEVER, expires_at=_NEVER)
    if dialect in ("mysql", "mariadb"):
        return mysql.insert(SourceLock).values(values).prefix_with("IGNORE")
    return (postgresql if dialect == "postgresql" else sqlite).insert(SourceLock).values(values).on_conflict_do_nothing()


def release(settings: Settings, source: str, run_id: str) -> None:
    try:
        with transaction(settings.hub_url) as s:
            lock = s.get(SourceLock, source, with_for_update=True)
            if lock is not None and lock.run_id == run_id:
                s.delete(lock)
    except Exception:  # noqa: BLE001 - the hub may be what failed; the lease then runs out by itself
        pass


def reap(settings: Settings, now: datetime | None = None) -> list[str]:
    """Mark runs whose process is gone as failed and remove their staging; returns their ids."""
    now = now or datetime.now(timezone.utc)
    reaped = []
    with transaction(settings.hub_url) as s:
        locks = {lock.source: lock for lock in s.scalars(select(SourceLock))}
        for run in s.scalars(select(Run).where(Run.status.in_(("extracting", "loaded")))):
            lock = locks.get(run.source)
            if lock is not None and lock.run_id == run.id and _alive(lock, now):
                continue  # still running
            if run.status == "extracting":
                run.status = "failed"
                run.error = (run.error or "") + ("; " if run.error else "") + \
                    "the process running it is gone (killed, or it could not record its failure)"
                run.finished_at = now
            reaped.append(run.id)
            if lock is not None and lock.run_id == run.id:
                s.delete(lock)
    for run_id in reaped:
        shutil.rmtree(Staging(settings.staging_dir, run_id, None).dir, ignore_errors=True)
    return reaped


def _alive(lock: SourceLock, now: datetime) -> bool:
    if lock.expires_at <= now:
        return False
    host, _, pid = lock.holder.rpartition(":")
    if host == socket.gethostname()[:80] and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    return True

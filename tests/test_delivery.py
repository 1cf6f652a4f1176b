"""Outbox -> EHR: at-least-once delivery into an idempotent receiver."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from connectors.targets import ehr_sql
from connectors.targets.ehr_sql import ehr_interview_results
from tests.helpers import outbox_bodies
from hiresync.errors import HireSyncError
from hiresync.hub.models import Outbox
from hiresync.hub.store import engine_for, transaction
from hiresync.delivery import outbox as outbox_mod
from hiresync.delivery.outbox import relay
from hiresync.privacy.pii import Keyring
from hiresync.pipeline import runner
from hiresync.pipeline.runner import run_source


def ehr_rows(settings) -> int:
    ehr_sql.EhrSqlTarget(settings.ehr_url, engine=engine_for(settings.ehr_url))  # its tables, even before delivery
    with engine_for(settings.ehr_url).connect() as conn:
        return conn.scalar(select(func.count()).select_from(ehr_interview_results))


def outbox(settings, status: str) -> int:
    with transaction(settings.hub_url) as s:
        return s.scalar(select(func.count()).select_from(Outbox).where(Outbox.status == status))


def test_a_relay_killed_after_the_target_applied_a_batch_duplicates_nothing(sqlite_settings, aiview, monkeypatch):
    monkeypatch.setattr(runner, "STEPS", tuple(s for s in runner.STEPS if s[0] != "deliver"))
    run_source("aiview", sqlite_settings)
    pending = outbox(sqlite_settings, "pending")
    assert pending > 0 and ehr_rows(sqlite_settings) == 0

    # The EHR commits, then the relay dies before it can mark the rows sent.
    real_upsert = ehr_sql.EhrSqlTarget.upsert

    def upsert_then_die(self, payloads):
        real_upsert(self, payloads)
        raise SystemExit("relay killed")

    monkeypatch.setattr(ehr_sql.EhrSqlTarget, "upsert", upsert_then_die)
    monkeypatch.setattr(outbox_mod, "_release_quietly", lambda *a: None)  # SIGKILLed: no way to give leases back
    keys = Keyring.load(sqlite_settings.key_file)
    with pytest.raises(SystemExit):
        relay(sqlite_settings, keys, "ehr", batch_size=100)
    assert ehr_rows(sqlite_settings) == 100 and outbox(sqlite_settings, "pending") == pending

    monkeypatch.setattr(ehr_sql.EhrSqlTarget, "upsert", real_upsert)
    # The dead relay's lease still holds its batch (and later rows of the same candidates wait for it).
    first = relay(sqlite_settings, keys, "ehr", batch_size=100)
    assert first < pending - 99 and outbox(sqlite_settings, "pending") == pending - first
    after_lease = datetime.now(timezone.utc) + timedelta(minutes=10)
    assert relay(sqlite_settings, keys, "ehr", batch_size=100, now=after_lease) == pending - first  # that batch again
    assert ehr_rows(sqlite_settings) == pending
    assert outbox(sqlite_settings, "pending") == 0


def test_a_refusing_target_keeps_rows_pending_and_says_why_without_data(sqlite_settings, aiview, monkeypatch):
    monkeypatch.setattr(runner, "STEPS", tuple(s for s in runner.STEPS if s[0] != "deliver"))
    run_source("aiview", sqlite_settings)
    pending = outbox(sqlite_settings, "pending")

    def refuse(self, payloads):
        raise ValueError(f"constraint failed for {payloads[0][1]['candidate']['national_id']}")

    monkeypatch.setattr(ehr_sql.EhrSqlTarget, "upsert", refuse)
    with pytest.raises(HireSyncError) as err:
        relay(sqlite_settings, Keyring.load(sqlite_settings.key_file), "ehr")
    assert str(err.value).startswith("delivery to 'ehr' failed (ValueError)")
    with transaction(sqlite_settings.hub_url) as s:
        errors = set(s.scalars(select(Outbox.last_error).where(Outbox.last_error.is_not(None))))
    assert errors == {"ValueError"}  # the driver's message, which quoted an ID number, is not kept
    assert outbox(sqlite_settings, "pending") == pending


def test_an_older_version_arriving_late_does_not_overwrite_the_ehr(sqlite_settings, aiview):
    run_source("aiview", sqlite_settings)
    changed = aiview.rescore(3)
    run_source("aiview", sqlite_settings)
    with transaction(sqlite_settings.hub_url) as s:  # replay every outbox row, oldest last
        rows = s.scalars(select(Outbox).order_by(Outbox.id.desc())).all()
    payloads = list(zip([r.idempotency_key for r in rows], outbox_bodies(sqlite_settings, rows)))
    ehr_sql.EhrSqlTarget(sqlite_settings.ehr_url, engine=engine_for(sqlite_settings.ehr_url)).upsert(payloads)

    with engine_for(sqlite_settings.ehr_url).connect() as conn:
        versions = dict(conn.execute(select(ehr_interview_results.c.result_key, ehr_interview_results.c.hub_version)
                                     .where(ehr_interview_results.c.result_key.in_([f"aiview:{k}" for k in changed]))).all())
    assert set(versions.values()) == {2}


def test_two_relays_writing_one_candidate_at_once_both_succeed(sqlite_settings, aiview, monkeypatch):
    """The insert that loses the race to another relay is retried as an update, not failed."""
    from sqlalchemy.exc import IntegrityError

    monkeypatch.setattr(runner, "STEPS", tuple(s for s in runner.STEPS if s[0] != "deliver"))
    run_source("aiview", sqlite_settings)
    target = ehr_sql.EhrSqlTarget(sqlite_settings.ehr_url, engine=engine_for(sqlite_settings.ehr_url))
    with transaction(sqlite_settings.hub_url) as s:
        rows = s.scalars(select(Outbox).order_by(Outbox.id).limit(5)).all()
    payloads = list(zip([r.idempotency_key for r in rows], outbox_bodies(sqlite_settings, rows)))

    real = ehr_sql.EhrSqlTarget._upsert
    calls = []

    def racing(self, items):
        calls.append(1)
        if len(calls) == 1:  # another relay commits the same rows between our read and our insert
            real(self, items)
            raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))
        real(self, items)

    monkeypatch.setattr(ehr_sql.EhrSqlTarget, "_upsert", racing)
    target.upsert(payloads)
    assert len(calls) == 2 and ehr_rows(sqlite_settings) == 5


def test_an_interrupted_relay_gives_its_leases_back_and_deliver_reports_rows_another_relay_holds(
        settings, aiview, monkeypatch):
    from typer.testing import CliRunner

    from hiresync.cli import app

    # on every hub database: the leases are SKIP LOCKED row locks on PostgreSQL and MariaDB

    monkeypatch.setattr(runner, "STEPS", tuple(s for s in runner.STEPS if s[0] != "deliver"))
    run_source("aiview", settings)
    pending = outbox(settings, "pending")
    real_upsert = ehr_sql.EhrSqlTarget.upsert

    def interrupted(self, payloads):
        raise KeyboardInterrupt  # Ctrl-C, or SIGTERM turned into it by `hiresync deliver`

    monkeypatch.setattr(ehr_sql.EhrSqlTarget, "upsert", interrupted)
    keys = Keyring.load(settings.key_file)
    with pytest.raises(KeyboardInterrupt):
        relay(settings, keys, "ehr", batch_size=100)
    with transaction(settings.hub_url) as s:
        assert s.scalar(select(func.count()).select_from(Outbox).where(Outbox.claimed_until.is_not(None))) == 0
    monkeypatch.setattr(ehr_sql.EhrSqlTarget, "upsert", real_upsert)

    # another relay holds 40 rows: `deliver` says so instead of a bare "delivered 0"
    until = datetime.now(timezone.utc) + timedelta(minutes=5)
    with transaction(settings.hub_url) as s:
        held = s.scalars(select(Outbox.id).order_by(Outbox.id).limit(40)).all()
        s.execute(Outbox.__table__.update().where(Outbox.id.in_(held)).values(claimed_until=until, claimed_by="other"))
    result = CliRunner().invoke(app, ["deliver", "ehr"])
    assert result.exit_code == 0, result.output
    assert f"40 rows are leased by another relay until {until:%H:%M:%S} UTC, retry then" in result.output
    assert outbox(settings, "pending") >= 40 and outbox(settings, "sent") > 0
    assert outbox(settings, "pending") + outbox(settings, "sent") == pending


def test_a_batch_that_all_waits_behind_a_leased_row_does_not_stop_the_relay(settings, aiview, monkeypatch):
    """A candidate's first row is leased by another relay; the next rows, the whole of a claim, are
    that candidate's too and wait. The relay goes on past them, on every hub database, and they
    follow once the lease has run out."""
    from hiresync.hub.models import InterviewResult

    monkeypatch.setattr(runner, "STEPS", tuple(s for s in runner.STEPS if s[0] != "deliver"))
    run_source("aiview", settings)
    pending = outbox(settings, "pending")
    until = datetime.now(timezone.utc) + timedelta(minutes=5)
    with transaction(settings.hub_url) as s:
        first, *waiting = s.execute(select(Outbox.id, Outbox.result_id).where(Outbox.target == "ehr")
                                    .order_by(Outbox.id).limit(3)).all()
        candidate = s.scalar(select(InterviewResult.candidate_id).where(InterviewResult.id == first.result_id))
        s.execute(InterviewResult.__table__.update().where(InterviewResult.id.in_([w.result_id for w in waiting]))
                  .values(candidate_id=candidate))
        s.execute(Outbox.__table__.update().where(Outbox.id == first.id).values(claimed_until=until, claimed_by="other"))
    keys = Keyring.load(settings.key_file)

    assert relay(settings, keys, "ehr", batch_size=2) == pending - 3
    with transaction(settings.hub_url) as s:
        left = s.execute(select(Outbox.id, Outbox.claimed_by).where(Outbox.status == "pending").order_by(Outbox.id)).all()
    assert [r.id for r in left] == [first.id] + [w.id for w in waiting]
    assert [r.claimed_by for r in left] == ["other", None, None]  # waiting, not leased

    assert relay(settings, keys, "ehr", batch_size=2, now=until + timedelta(seconds=1)) == 3
    assert outbox(settings, "pending") == 0 and ehr_rows(settings) == pending


def test_two_relays_claiming_the_same_rows_at_once_never_both_lease_one(settings, aiview, monkeypatch):
    """Relay B claims while relay A has read its due rows and not yet leased them (between A's
    SELECT and its UPDATE). PostgreSQL and MariaDB lock A's rows (SKIP LOCKED: B takes none of
    them); SQLite has no such lock, and A's lease then takes only the rows B did not lease first.
    Either way no row is leased to both, which would send it twice."""
    monkeypatch.setattr(runner, "STEPS", tuple(s for s in runner.STEPS if s[0] != "deliver"))
    run_source("aiview", settings)
    with transaction(settings.hub_url) as s:
        due = set(s.scalars(select(Outbox.id).where(Outbox.target == "ehr", Outbox.status == "pending")))
    now, real, claims = datetime.now(timezone.utc), outbox_mod._in_candidate_order, {}

    def b_claims_in_between(s, target, rows):
        if "B" not in claims:
            claims["B"] = None  # B's own claim passes here too
            claims["B"] = outbox_mod._claim(settings, target, 1000, now, "relay-B", 300)
        return real(s, target, rows)

    monkeypatch.setattr(outbox_mod, "_in_candidate_order", b_claims_in_between)
    claims["A"] = outbox_mod._claim(settings, "ehr", 1000, now, "relay-A", 300)

    a = {r.id for r in claims["A"].rows}
    b = {r.id for r in claims["B"].rows} if claims["B"] else set()
    assert a.isdisjoint(b) and a | b == due
    with transaction(settings.hub_url) as s:
        leased = dict(s.execute(select(Outbox.id, Outbox.claimed_by).where(Outbox.id.in_(due))).all())
    assert leased == {i: "relay-A" if i in a else "relay-B" for i in due}

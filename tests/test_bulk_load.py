"""The load's bulk path (hiresync.hub.bulk) and, on PostgreSQL, the statistics it refreshes while it
loads. COPY bypasses SQLAlchemy's statement compilation, so these check that a row lands exactly as
`insert(table)` would have written it: Python-side defaults, UTC timestamps, JSON with Chinese text."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st
from sqlalchemy import Column, DateTime, func, insert, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hiresync.hub.bulk import _bind_processor, insert_rows
from hiresync.hub.models import BLIND_INDEX_SCHEME, AuditEvent, Candidate, UTCDateTime
from hiresync.hub.store import engine_for, migrate, transaction
from hiresync.pipeline.runner import run_source
from simulators.aiview import AIViewSimulator
from tests.conftest import SERVER_URLS, _fresh_server_database, settings_for
from tests.helpers import connect, digest


def _candidate(i: int) -> dict:
    return dict(candidate_key=f"ck-{i}", key_version=1, national_id_bidx=digest(f"id-{i}"), national_id_enc="v1:eA==",
                national_id_masked="110***", full_name_enc="v1:eQ==", full_name_masked="王*")


def test_bulk_rows_get_the_python_defaults_an_insert_would_give(hub_url):
    """`bidx_scheme` has a Python default (2) and a server default (1, for rows older code writes):
    a COPY that forgot the Python default would mark every new candidate for re-indexing."""
    before = datetime.now(timezone.utc) - timedelta(seconds=5)
    with Session(engine_for(hub_url)) as s, s.begin():
        insert_rows(s, Candidate.__table__, [_candidate(1), _candidate(2)])
        s.execute(insert(Candidate.__table__), [_candidate(3)])
    with transaction(hub_url) as s:
        rows = s.scalars(select(Candidate).order_by(Candidate.candidate_key)).all()
    assert [r.candidate_key for r in rows] == ["ck-1", "ck-2", "ck-3"]
    assert [r.bidx_scheme for r in rows] == [BLIND_INDEX_SCHEME] * 3
    assert all(r.created_at >= before and r.updated_at >= before for r in rows)


def test_bulk_rows_keep_json_chinese_text_and_aware_times(hub_url):
    when = datetime(2026, 12, 5, 20, 30, 15, 123456, tzinfo=timezone(timedelta(hours=8)))
    detail = {"原因": "手机号格式错误", "rows": [1, 2], "nested": {"ok": True, "none": None}}
    with Session(engine_for(hub_url)) as s, s.begin():
        insert_rows(s, AuditEvent.__table__, [dict(kind="retention_purge", subject_ref="raw_payload:1", detail=detail,
                                                   actor="测试", created_at=when)])
    with transaction(hub_url) as s:
        row = s.scalars(select(AuditEvent)).one()
    assert row.detail == detail and row.actor == "测试"
    assert row.created_at == when  # stored as UTC, read back aware: the same moment


@settings(max_examples=300, deadline=None)
@given(moment=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
       offset_minutes=st.one_of(st.none(), st.integers(min_value=-14 * 60, max_value=14 * 60)))
def test_sqlite_timestamps_are_written_as_sqlalchemy_would_write_them(moment, offset_minutes):
    """UTCDateTime's own SQLite bind (isoformat) writes exactly SQLAlchemy's DATETIME text, and so
    does the bulk path's for a plain DateTime column: rows written before and after them compare and
    sort alike."""
    dialect = sqlite.dialect()
    if offset_minutes is not None:
        moment = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    stock = DateTime().dialect_impl(dialect).bind_processor(dialect)
    ours = UTCDateTime().bind_processor(dialect)
    assert ours(moment) == stock(UTCDateTime().process_bind_param(moment, dialect))
    assert ours(None) is None
    # A plain DateTime column (the EHR's) through the bulk path: naive or aware, SQLAlchemy's text.
    assert _bind_processor(Column("at", DateTime), dialect)(moment) == stock(moment)


def test_a_bulk_insert_that_breaks_a_constraint_raises_what_an_insert_would(hub_url):
    with pytest.raises(IntegrityError), Session(engine_for(hub_url)) as s, s.begin():
        insert_rows(s, Candidate.__table__, [_candidate(1), _candidate(1)])  # one resident ID index twice
    with transaction(hub_url) as s:
        assert s.scalars(select(Candidate)).all() == []  # the transaction kept nothing


@pytest.fixture
def pg_settings(tmp_path, monkeypatch):
    """A PostgreSQL hub of its own (the test holds locks on it) and runs of several micro-batches."""
    base = SERVER_URLS["postgresql"]
    if not base:
        pytest.skip("postgresql is not configured here (set HIRESYNC_TEST_PG_URL)")
    url, drop = _fresh_server_database(base)
    migrate(url)
    monkeypatch.setattr("hiresync.pipeline.load._Statistics.FIRST", 50)  # the first refresh, at a test's scale
    yield replace(settings_for(url, tmp_path, monkeypatch), batch_size=50)
    drop()


def test_postgresql_tables_get_statistics_during_a_first_big_load(pg_settings, monkeypatch):
    with AIViewSimulator(count=200, seed=5) as sim:
        connect(monkeypatch, sim)
        summary = run_source("aiview", pg_settings)
    assert summary["status"] == "success" and summary["inserted"] > 150
    with engine_for(pg_settings.hub_url).connect() as conn:
        # A table never analysed has reltuples -1; the load's own ANALYZE counted its rows.
        assert conn.scalar(text("SELECT reltuples FROM pg_class WHERE relname = 'raw_payloads'")) > 0
        # ...and sampled what lookups are planned from, never the ciphertext (migration 0020).
        sampled = {(t, c) for t, c in conn.execute(text(
            "SELECT tablename, attname FROM pg_stats WHERE tablename IN ('raw_payloads', 'candidates')"))}
    assert ("raw_payloads", "vendor_result_id") in sampled and ("candidates", "national_id_bidx") in sampled
    assert not {c for t, c in sampled if c.endswith("_enc")}, sampled


def test_the_relay_vacuums_the_outbox_as_it_goes_on_postgresql(pg_settings, monkeypatch):
    """Each delivered row leaves two dead versions (its lease, its outcome); the relay vacuums them
    as it goes, so the next versions reuse the space instead of the table growing threefold."""
    monkeypatch.setattr("hiresync.delivery.outbox.RECLAIM_EVERY", 50)
    with AIViewSimulator(count=200, seed=7) as sim:
        connect(monkeypatch, sim)
        summary = run_source("aiview", pg_settings)
    assert summary["status"] == "success" and summary["delivered"] > 150
    with engine_for(pg_settings.hub_url).connect() as conn:
        vacuumed = conn.scalar(text("SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'outbox'"))
    assert vacuumed >= 1, vacuumed  # autovacuum counts apart (autovacuum_count)


def test_a_load_does_not_wait_for_statistics_another_session_holds(pg_settings, monkeypatch):
    """Another transaction holding one table's statistics lock (a second run's load, a relay's
    vacuum, autovacuum) never holds up the load, and the other tables' statistics are refreshed."""
    holder = engine_for(pg_settings.hub_url).connect()
    tx = holder.begin()
    holder.execute(text("LOCK TABLE raw_payloads IN SHARE UPDATE EXCLUSIVE MODE"))
    try:
        with AIViewSimulator(count=200, seed=6) as sim:
            connect(monkeypatch, sim)
            summary = run_source("aiview", pg_settings)
    finally:
        tx.rollback()
        holder.close()
    assert summary["status"] == "success" and summary["inserted"] > 150
    with engine_for(pg_settings.hub_url).connect() as conn:
        counted = dict(conn.execute(text("SELECT relname, reltuples FROM pg_class "
                                         "WHERE relname IN ('raw_payloads', 'interview_results')")).all())
    assert counted["raw_payloads"] < 0 < counted["interview_results"], counted  # -1: never analysed


def test_one_of_finds_exactly_the_given_keys(hub_url):
    """hiresync.hub.bulk.one_of: `= ANY(array)` on PostgreSQL, IN elsewhere; the same rows either way,
    for many keys, a set, no keys, and inside an UPDATE. none_of (`<> ALL`, NOT IN) finds the rest."""
    from hiresync.hub.bulk import none_of, one_of

    with Session(engine_for(hub_url)) as s, s.begin():
        insert_rows(s, Candidate.__table__, [_candidate(i) for i in range(1200)])
    wanted = [digest(f"id-{i}") for i in range(0, 1200, 3)] + [digest("no such index")]
    with transaction(hub_url) as s:
        found = s.scalars(select(Candidate.candidate_key).where(one_of(Candidate.national_id_bidx, wanted))).all()
        assert sorted(found) == sorted(f"ck-{i}" for i in range(0, 1200, 3))
        rest = s.scalars(select(Candidate.candidate_key).where(none_of(Candidate.national_id_bidx, wanted))).all()
        assert sorted(rest) == sorted(f"ck-{i}" for i in range(1200) if i % 3)
        assert len(s.scalars(select(Candidate.id).where(none_of(Candidate.id, []))).all()) == 1200
        ids = set(s.scalars(select(Candidate.id).where(one_of(Candidate.candidate_key, {"ck-1", "ck-2"}))))
        assert len(ids) == 2
        assert s.scalars(select(Candidate.id).where(one_of(Candidate.id, []))).all() == []
        s.execute(Candidate.__table__.update().where(one_of(Candidate.id, ids)).values(full_name_masked="李*"))
    with transaction(hub_url) as s:
        assert s.scalar(select(func.count()).where(Candidate.full_name_masked == "李*")) == 2


def test_update_rows_gives_each_row_its_own_values(hub_url):
    """hiresync.hub.bulk.update_rows: one UPDATE over unnest() arrays on PostgreSQL, an executemany
    elsewhere; each row gets its own values (None, Chinese text, aware times stored as UTC), the
    same expression applies to every row, and rows not named keep theirs."""
    from hiresync.hub.bulk import update_rows
    from hiresync.hub.models import Outbox

    outbox = Outbox.__table__
    with Session(engine_for(hub_url)) as s, s.begin():
        insert_rows(s, outbox, [dict(target="ehr", result_version=1, idempotency_key=digest(f"k{i}"), run_id="r", attempts=i,
                                     target_ref="old", claimed_by="relay") for i in range(4)])
    with transaction(hub_url) as s:
        ids = {f"k{i}": s.scalar(select(Outbox.id).where(Outbox.idempotency_key == digest(f"k{i}"))) for i in range(4)}
    when = datetime(2026, 12, 6, 9, 30, 0, 250000, tzinfo=timezone(timedelta(hours=8)))
    rows = [{"id": ids["k0"], "status": "sent", "target_ref": "aiview:AV-1", "sent_at": when, "last_error": None},
            {"id": ids["k1"], "status": "dead", "target_ref": None, "sent_at": None, "last_error": "HTTP 422: 缺少字段"},
            {"id": ids["k2"], "status": "pending", "target_ref": None, "sent_at": None, "last_error": "超时"}]
    with transaction(hub_url) as s:
        update_rows(s, outbox, rows, lambda v: dict(
            status=v.status, target_ref=func.coalesce(v.target_ref, outbox.c.target_ref), sent_at=v.sent_at,
            last_error=v.last_error, attempts=outbox.c.attempts + 1, claimed_by=None))
        update_rows(s, outbox, [], lambda v: dict(status=v.status))  # nothing to do
    with transaction(hub_url) as s:
        got = {r.idempotency_key: r for r in s.scalars(select(Outbox))}
    got = {f"k{i}": got[digest(f"k{i}")] for i in range(4)}
    assert [(got[k].status, got[k].target_ref, got[k].last_error, got[k].attempts, got[k].claimed_by)
            for k in ("k0", "k1", "k2", "k3")] == [
        ("sent", "aiview:AV-1", None, 1, None), ("dead", "old", "HTTP 422: 缺少字段", 2, None),
        ("pending", "old", "超时", 3, None), ("pending", "old", None, 3, "relay")]
    assert got["k0"].sent_at == when and got["k1"].sent_at is None


def test_lookup_returns_what_a_select_returns(hub_url):
    """hiresync.hub.bulk.lookup: plain SQL to the driver (`= ANY(array)` on PostgreSQL, IN elsewhere)
    with the columns' conversions applied by hand. The same tuples as SQLAlchemy's select, for digests
    (bytes in the database, hex in Python), ciphertexts, aware timestamps, Chinese text, an equality
    filter, integer keys, a set of keys, unknown keys and no keys."""
    from hiresync.hub.bulk import lookup

    with Session(engine_for(hub_url)) as s, s.begin():
        insert_rows(s, Candidate.__table__, [_candidate(i) | {"full_name_masked": f"王{i}"} for i in range(1200)])
    columns = (Candidate.id, Candidate.candidate_key, Candidate.national_id_bidx, Candidate.full_name_enc,
               Candidate.full_name_masked, Candidate.created_at, Candidate.key_version)
    wanted = {digest(f"id-{i}") for i in range(0, 1200, 3)} | {digest("no such index")}
    with transaction(hub_url) as s:
        expected = sorted(tuple(r) for r in s.execute(select(*columns).where(Candidate.national_id_bidx.in_(wanted))))
        got = sorted(lookup(s, columns, Candidate.national_id_bidx, wanted))
        assert len(got) == 400 and got == expected
        assert {r[2] for r in got} == wanted - {digest("no such index")}  # hex again, as the keys were given
        assert got[0][5].tzinfo is not None and got[0][3].startswith("v1:")
        ids = [r[0] for r in got[:5]]
        assert sorted(lookup(s, (Candidate.candidate_key,), Candidate.id, ids, key_version=1)) == sorted(
            (r[1],) for r in got[:5])
        assert lookup(s, (Candidate.candidate_key,), Candidate.id, ids, key_version=2) == []
        assert lookup(s, (Candidate.candidate_key,), Candidate.__table__.c.full_name_masked, ["王3"]) == [("ck-3",)]
        assert lookup(s, (Candidate.id,), Candidate.id, []) == []


def test_rows_inserted_together_share_the_defaults_of_their_statement(hub_url):
    """A column the rows leave out is filled once per statement (created_at: the moment the batch was
    written), not recomputed per row; a row that gives the column keeps its own value."""
    own = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    with Session(engine_for(hub_url)) as s, s.begin():
        insert_rows(s, Candidate.__table__, [_candidate(i) for i in range(300)])
        insert_rows(s, Candidate.__table__, [_candidate(300) | {"created_at": own}])
    with transaction(hub_url) as s:
        moments = s.execute(select(Candidate.candidate_key, Candidate.created_at, Candidate.updated_at)).all()
    together = {(c, u) for k, c, u in moments if k != "ck-300"}
    assert len(together) == 1 and next(iter(together))[0] > own
    assert [c for k, c, _ in moments if k == "ck-300"] == [own]

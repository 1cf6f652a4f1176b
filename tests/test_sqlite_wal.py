"""The SQLite hub's write-ahead log stays bounded during a long load with readers beside it
(hiresync.hub.store.keep_wal_small): SQLite restarts the log only at a moment no reader uses it,
and a relay beside the load leaves none (the log grew to 6 GB in a million-result run)."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

from sqlalchemy import create_engine

from hiresync.hub import store
from hiresync.hub.store import keep_wal_small
from hiresync.pipeline import load as load_module
from hiresync.pipeline.runner import run_source


def _wal(db: Path) -> int:
    wal = Path(f"{db}-wal")
    return wal.stat().st_size if wal.exists() else 0


def _write(conn: sqlite3.Connection, rows: int) -> None:
    conn.executemany("INSERT INTO t (body) VALUES (?)", [("x" * 2000,)] * rows)
    conn.commit()


def test_a_log_past_the_limit_is_truncated_and_one_below_it_is_left(tmp_path, monkeypatch):
    db = tmp_path / "hub.db"
    writer = sqlite3.connect(db)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    writer.commit()
    reader = sqlite3.connect(db)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchone()  # an old snapshot: the log cannot restart
    for _ in range(5):
        _write(writer, 200)
    reader.rollback()  # the reader is done, but nothing truncates the log on its own
    _write(writer, 10)
    grown = _wal(db)
    assert grown > 2_000_000

    engine = create_engine(f"sqlite:///{db}")
    monkeypatch.setattr(store, "WAL_LIMIT", grown * 2)
    keep_wal_small(engine)
    assert _wal(db) == grown  # below the limit: no checkpoint is forced

    monkeypatch.setattr(store, "WAL_LIMIT", grown // 2)
    keep_wal_small(engine)
    assert _wal(db) == 0
    assert reader.execute("SELECT count(*) FROM t").fetchone() == (1010,)  # nothing lost
    reader.close()
    writer.close()
    engine.dispose()


def test_a_large_run_with_the_relay_beside_it_keeps_the_log_small(sqlite_settings, aiview, monkeypatch):
    """Batches of 50 with the relay beside the load, and a limit of 64 KB: after each batch the log
    is back under the limit, and the run is delivered as without it."""
    monkeypatch.setenv("HIRESYNC_BATCH_SIZE", "50")
    monkeypatch.setenv("HIRESYNC_RELAY_BESIDE_ROWS", "100")
    settings = dataclasses.replace(sqlite_settings, batch_size=50, relay_beside_rows=100)
    monkeypatch.setattr(store, "WAL_LIMIT", 64 * 1024)
    db = Path(settings.hub_url.split(":///", 1)[1])
    after_batches = []

    def keep_and_note(engine):
        keep_wal_small(engine)
        after_batches.append(_wal(db))

    monkeypatch.setattr(load_module, "keep_wal_small", keep_and_note)
    summary = run_source("aiview", settings)

    assert summary["status"] == "success" and summary["delivered"] >= 300 - len(aiview.defects)
    assert len(after_batches) >= 6  # every batch of the load
    assert max(after_batches) <= 64 * 1024

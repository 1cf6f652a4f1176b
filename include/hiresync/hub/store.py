"""Engines, migrations and transactions for the hub (and the SQL targets).

One engine per URL per process. SQLite gets WAL and a busy timeout so that the CLI, an Airflow
task and the relay can share the embedded file; server databases get pre-ping for long-lived
workers.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Iterator

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from hiresync.config.files import private_file, tighten

log = logging.getLogger(__name__)
_MIGRATIONS = Path(__file__).parent / "migrations"
# The most SQLite's write-ahead log may grow to during a long load before it is truncated. Each
# truncation first copies every page in the log into the database file, and a load batch rewrites
# pages all over the indexes on unordered keys: at 64 MB a large load truncated after about every
# other batch, and a page several batches rewrote was copied each time; at 256 MB it is copied once
# (docs/benchmarks.md has the measurements). The cost is disk only: SQLite's index of the log is a
# few hundred KB at this size.
WAL_LIMIT = 256 * 2**20


def engine_for(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1].split("?", 1)[0]
        if path and path != ":memory:":
            # The file holds personal data (encrypted columns, but also masks and blind indexes):
            # 0600 in a 0700 folder, also when an older version left it 0644 (two system calls);
            # SQLite gives its -wal and -shm files the database's mode.
            private_file(Path(path))
            for side in ("-wal", "-shm"):
                tighten(Path(path + side), 0o600)
    return _engine(url)


@cache
def _engine(url: str) -> Engine:
    # A statement's error message would otherwise quote its parameters: names, comments, tokens.
    if url.startswith("sqlite"):
        # sqlite3 keeps 128 prepared statements per connection by default. Lookups of hundreds of
        # keys (`IN (?, ?, ...)`) differ in their count of placeholders, so each is a statement of
        # its own, and 128 of them per pooled connection held about 75 MB in the relay beside a
        # 100,000-result load; 16 keep what repeats (the claims, the progress row) prepared.
        engine = create_engine(url, connect_args={"timeout": 30, "cached_statements": 16}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            # 16 KB pages for a new file (an existing one keeps its own; VACUUM would convert it):
            # a raw payload row is about 1.1 KB, and a 4 KB page left a fifth of itself empty,
            # about 400 bytes per stored result across the tables.
            cur.execute("PRAGMA page_size=16384")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    if url.startswith(("mysql", "mariadb")):
        # PostgreSQL's isolation, which every statement here is written and tested for. Under InnoDB's
        # default REPEATABLE READ an UPDATE locks every row it scans, matching or not, and gaps
        # besides: two relays leasing and recording outbox rows by id deadlocked now and then.
        return create_engine(url, pool_pre_ping=True, hide_parameters=True, isolation_level="READ COMMITTED")
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def keep_wal_small(engine: Engine) -> None:
    """Truncate a SQLite hub's write-ahead log once it is past WAL_LIMIT; call between transactions.

    SQLite checkpoints the log by itself, but starts it again from the beginning only at a moment
    no reader is using it. A relay reading beside a long load (hiresync.delivery.beside) leaves no
    such moment: the log grew to 6 GB during a million-result load. A TRUNCATE checkpoint waits
    (within the busy timeout) for the readers of the moment; readers arriving meanwhile read the
    database file. If it cannot finish, the next call tries again: never a reason to fail a load."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return
    wal = Path(f"{database}-wal")
    try:
        if wal.stat().st_size <= WAL_LIMIT:
            return
    except FileNotFoundError:
        return
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    except OperationalError as exc:
        log.info("the write-ahead log was not truncated this time (%s)", type(exc).__name__)


def reclaim_dead_rows(engine: Engine, table: str) -> None:
    """PostgreSQL: make the space of `table`'s dead row versions reusable now; call between
    transactions. A plain VACUUM (never FULL): it blocks no reader or writer, and it skips the table
    when another vacuum or an ANALYZE holds it (autovacuum is on it already, or a load refreshes its
    statistics). Never a reason to fail what called it.

    An update leaves the row's old version behind until vacuum, and autovacuum looks at a table about
    once a minute: the relay updates every outbox row twice (its lease, then its outcome), so during a
    large run the outbox held three versions of each row, and kept their space (docs/benchmarks.md)."""
    if engine.dialect.name != "postgresql":
        return
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"VACUUM (SKIP_LOCKED) {engine.dialect.identifier_preparer.quote(table)}")
    except Exception as exc:  # noqa: BLE001 - housekeeping: the next call, or autovacuum, tries again
        log.info("%s was not vacuumed this time (%s)", table, type(exc).__name__)


def alembic_config(url: str, connection=None):
    """Alembic's configuration for the hub at `url`; with `connection`, migrations run in that
    connection's transaction."""
    from alembic.config import Config  # only where the schema is changed: a relay process needs none of it

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def migrate(url: str) -> None:
    """Bring the hub schema to the newest revision (idempotent)."""
    from alembic import command

    engine = engine_for(url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(url, conn), "head")


@contextmanager
def transaction(url: str) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back on any exception."""
    with Session(engine_for(url), expire_on_commit=False) as session, session.begin():
        yield session

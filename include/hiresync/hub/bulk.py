"""Bulk inserts: COPY on PostgreSQL, executemany elsewhere, inside the caller's transaction.

psycopg sends an executemany as one INSERT per row (pipelined, but still a parse, bind and
execute per row on the server); COPY streams the rows in one statement, several times faster for
the load's batches of a few thousand rows. SQLite and MariaDB keep SQLAlchemy's executemany, which
their drivers already batch. Because COPY bypasses SQLAlchemy's statement compilation, this module
applies what SQLAlchemy would have: Python-side column defaults and each type's bind processing
(UTC timestamps, JSON), so a row lands exactly as `insert(table)` would have written it.
"""

from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import Table, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT `rows` (dicts with the same keys) into `table` in `session`'s transaction."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name != "postgresql" or dialect.driver != "psycopg":
        session.execute(insert(table), rows)
        return
    given = list(rows[0])
    defaults = {c.name: c.default.arg for c in table.columns
                if c.name not in given and c.default is not None and not c.default.is_sequence
                and not c.default.is_clause_element}
    names = given + list(defaults)
    processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names]
    columns = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
    statement = f"COPY {dialect.identifier_preparer.format_table(table)} ({columns}) FROM STDIN"
    cursor = connection.connection.driver_connection.cursor()
    try:
        with cursor.copy(statement) as copy:
            for row in rows:
                extra = [arg(None) if callable(arg) else arg for arg in defaults.values()]
                copy.write_row(_bound(processors, [row[name] for name in given] + extra))
    except dialect.loaded_dbapi.Error as exc:
        # The same exception types as executemany (IntegrityError, ...): callers need not know the path.
        raise DBAPIError.instance(statement, None, exc, dialect.loaded_dbapi.Error) from None
    finally:
        cursor.close()


def _bound(processors: list, values: Iterable[Any]) -> tuple:
    return tuple(v if p is None or v is None else p(v) for p, v in zip(processors, values))

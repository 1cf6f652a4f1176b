"""Bulk inserts (COPY on PostgreSQL, the driver's executemany elsewhere), updates of many rows each
with its own values, and lookups of many keys.

psycopg sends an executemany as one INSERT per row (pipelined, but still a parse, bind and
execute per row on the server); COPY streams the rows in one statement, several times faster for
the load's batches of a few thousand rows. It streams them in COPY's binary format, so neither
side spells out a kilobyte of ciphertext in hex or parses a timestamp from text (docs/benchmarks.md).
SQLite's and PyMySQL's executemany are fast already (PyMySQL folds the rows into
multi-row INSERTs), but SQLAlchemy's own executemany builds a parameter dict per row through its
compiler, which cost more than the insert itself; here the rows go to the driver as tuples. Both
paths bypass SQLAlchemy's statement compilation, so this module applies what SQLAlchemy would have:
Python-side column defaults and each type's bind processing (UTC timestamps, JSON), so a row lands
exactly as `insert(table)` would have written it.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from operator import itemgetter
from types import SimpleNamespace
from typing import Any, Callable, Iterable, Sequence

from sqlalchemy import Boolean, Column, ColumnElement, Connection, DateTime, Table, all_, any_, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from hiresync.hub.models import sqlite_datetime_text


def insert_rows(session: Session | Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT `rows` (dicts with the same keys) into `table` in the session's or connection's transaction."""
    if not rows:
        return
    connection = session.connection() if isinstance(session, Session) else session
    dialect = connection.dialect
    if not _driver_sql(dialect):
        connection.execute(insert(table), rows)  # a driver this module does not know: SQLAlchemy's way
        return
    given = list(rows[0])
    names = given + [c.name for c in table.columns if c.name not in given and _python_default(c)]

    def processor(name: str):
        return _bind_processor(table.c[name], dialect)

    # A column the rows leave out gets its default once per statement, not once per row: a
    # statement's rows are written at one moment, so they share its created_at (a utcnow() and its
    # conversion per row and per table were a measurable part of the load; docs/benchmarks.md).
    filled = []
    for name in names[len(given):]:
        arg = table.c[name].default.arg
        value = arg(None) if callable(arg) else arg
        filled.append(process(value) if value is not None and (process := processor(name)) else value)
    filled = tuple(filled)
    # Only the given columns whose type converts a value (timestamps, JSON, ...) are touched per row.
    convert = [(i, p) for i, name in enumerate(given) if (p := processor(name)) is not None]
    pick = itemgetter(*given) if len(given) > 1 else (lambda row: (row[given[0]],))
    quote = dialect.identifier_preparer.quote
    columns = ", ".join(quote(name) for name in names)

    def values():
        for row in rows:
            value = list(pick(row))
            for i, process in convert:
                if value[i] is not None:
                    value[i] = process(value[i])
            yield tuple(value) + filled

    if dialect.name == "postgresql":
        types = _binary_types(table, names, dialect)
        if types is None:  # a column type without a binary form here: COPY's text format
            _copy(connection, f"COPY {dialect.identifier_preparer.format_table(table)} ({columns}) FROM STDIN",
                  values())
            return
        numeric = [i for i, t in enumerate(types) if t == "numeric"]
        rows_out = values() if not numeric else (_as_decimals(row, numeric) for row in values())
        _copy(connection, f"COPY {dialect.identifier_preparer.format_table(table)} ({columns}) FROM STDIN "
                          f"(FORMAT BINARY)", rows_out, types)
        return
    marker = "?" if dialect.paramstyle == "qmark" else "%s"  # sqlite3 / PyMySQL
    statement = (f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({columns}) "
                 f"VALUES ({', '.join([marker] * len(names))})")
    connection.exec_driver_sql(statement, list(values()))  # tuples: straight to cursor.executemany


def _python_default(column) -> bool:
    """The column has a default SQLAlchemy evaluates in Python (a constant or a function), which
    `insert(table)` would have applied."""
    d = column.default
    return d is not None and not d.is_sequence and not d.is_clause_element


# PostgreSQL's column types (as SQLAlchemy spells them, without a length or precision) -> the type
# whose binary form psycopg writes for it. In COPY's binary format every value must be in exactly
# its column's form, and psycopg cannot ask the server: it is told (Copy.set_types).
_BINARY_FORM = {
    "varchar": "varchar", "text": "text", "integer": "int4", "bigint": "int8", "smallint": "int2",
    "boolean": "bool", "bytea": "bytea", "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz", "numeric": "numeric", "json": "json",
}


def _binary_types(table: Table, names: list[str], dialect) -> list[str] | None:
    forms = [_BINARY_FORM.get(re.sub(r"\(.*\)", "", table.c[n].type.compile(dialect=dialect)).strip().lower())
             for n in names]
    return None if None in forms else forms


def _as_decimals(row: tuple, numeric: list[int]) -> tuple:
    """numeric's binary form is written from a Decimal; a float becomes the Decimal of its shortest
    repr, the text the text format would have sent (the column's scale then rounds it, as before)."""
    value = list(row)
    for i in numeric:
        if value[i] is not None and not isinstance(value[i], Decimal):
            value[i] = Decimal(repr(value[i]) if isinstance(value[i], float) else value[i])
    return tuple(value)


def _copy(connection: Connection, statement: str, rows: Iterable[tuple], types: list[str] | None = None) -> None:
    dialect = connection.dialect
    cursor = connection.connection.driver_connection.cursor()
    try:
        with cursor.copy(statement) as copy:
            if types is not None:
                copy.set_types(types)
            for row in rows:
                copy.write_row(row)
    except dialect.loaded_dbapi.Error as exc:
        # The same exception types as executemany (IntegrityError, ...): callers need not know the path.
        raise DBAPIError.instance(statement, None, exc, dialect.loaded_dbapi.Error) from None
    finally:
        cursor.close()



def update_rows(session: Session, table: Table, rows: list[dict[str, Any]],
                values: Callable[[Any], dict[str, Any]], key: str = "id") -> None:
    """UPDATE many rows of `table`, each matched on `key` and given values of its own.

    `rows` are dicts with the same keys, named after `table`'s columns: the key and each row's own
    values. `values(v)` returns the SET clause, in which `v.<name>` stands for a row's own value;
    anything else in it (a constant, `table.c.attempts + 1`) is the same expression for every row.
    On PostgreSQL this is one statement over `unnest()` of one array per name (psycopg's
    executemany is a statement per row); elsewhere an executemany."""
    if not rows:
        return
    names = list(rows[0])
    if session.get_bind().dialect.name == "postgresql":
        arrays = [bindparam(f"rows_{n}", [r[n] for r in rows], type_=ARRAY(table.c[n].type)) for n in names]
        v = func.unnest(*arrays).table_valued(*names).render_derived(name="v")
        session.execute(update(table).where(table.c[key] == v.c[key]).values(values(v.c)))
        return
    params = {n: f"row_{n}" for n in names}  # not the column names: those are taken in an UPDATE
    v = SimpleNamespace(**{n: bindparam(p, type_=table.c[n].type) for n, p in params.items()})
    session.execute(update(table).where(table.c[key] == getattr(v, key)).values(values(v)),
                    [{p: r[n] for n, p in params.items()} for r in rows])


def lookup(session: Session | Connection, columns: Sequence[ColumnElement], key: ColumnElement, keys: Iterable[Any],
           **equal: Any) -> list[tuple]:
    """The rows of `key`'s table whose `key` is one of `keys` and whose columns named in `equal` hold
    those values: one tuple of `columns`' values per row, converted as a select would have.

    For the load's and the relay's lookups of hundreds of keys, several dozen per batch: through
    SQLAlchemy each cost two to three times the query itself (building the expanding IN's parameters,
    the ORM's and Core's result handling; docs/benchmarks.md). The SQL is plain (`k IN (?, ...)`,
    on PostgreSQL `k = ANY(%s)` with one array, see OneOf) and goes to the driver; the columns' bind
    and result processing (digests, timestamps, ciphertexts) is applied here, as insert_rows does."""
    keys = list(keys)
    if not keys:
        return []
    key, columns = key.expression, [c.expression for c in columns]  # a mapped attribute's column
    connection = session.connection() if isinstance(session, Session) else session
    dialect = connection.dialect
    table = key.table
    if not _driver_sql(dialect):  # a driver this module does not know: SQLAlchemy's way
        query = select(*columns).where(one_of(key, keys), *(table.c[n] == v for n, v in equal.items()))
        return [tuple(row) for row in connection.execute(query)]
    quote = dialect.identifier_preparer.quote
    marker = "%s" if dialect.paramstyle in ("format", "pyformat") else "?"
    tests = [f"{quote(name)} = {marker}" for name in equal]
    params = [_bound(table.c[name], value, dialect) for name, value in equal.items()]
    process = _bind_processor(key, dialect)
    keys = [process(k) for k in keys] if process else keys
    if dialect.name == "postgresql":
        # %b: the array in PostgreSQL's binary form. psycopg spells a list out as an array literal
        # otherwise, each element escaped by a regular expression: a 500-key lookup of digests took
        # 3.2 ms against 0.8 ms (docs/benchmarks.md).
        tests.append(f"{quote(key.name)} = ANY(CAST(%b AS {key.type.compile(dialect=dialect)}[]))")
        params.append(keys)
    else:
        tests.append(f"{quote(key.name)} IN ({', '.join([marker] * len(keys))})")
        params += keys
    statement = (f"SELECT {', '.join(quote(c.name) for c in columns)} "
                 f"FROM {dialect.identifier_preparer.format_table(table)} WHERE {' AND '.join(tests)}")
    rows = connection.exec_driver_sql(statement, tuple(params)).fetchall()
    convert = [(i, p) for i, c in enumerate(columns) if (p := c.type.dialect_impl(dialect).result_processor(dialect, None))]
    if not convert:
        return [tuple(row) for row in rows]
    out = []
    for row in rows:
        value = list(row)
        for i, p in convert:
            value[i] = p(value[i])
        out.append(tuple(value))
    return out


def _driver_sql(dialect) -> bool:
    """The drivers whose SQL this module writes itself (insert_rows, lookup)."""
    return dialect.name in ("sqlite", "mysql", "mariadb") or (dialect.name == "postgresql" and dialect.driver == "psycopg")


def _bind_processor(column: Column, dialect) -> Callable[[Any], Any] | None:
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    if process is not None and dialect.name == "sqlite" and type(column.type) is DateTime:
        return _sqlite_datetime(process)
    return process


def _sqlite_datetime(stock: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A plain DateTime column on SQLite (the EHR's tables; the hub's own are UTCDateTime): a naive
    datetime's text as UTCDateTime writes it (models.sqlite_datetime_text); anything else (an aware
    datetime, a date) as SQLAlchemy would write it."""
    def process(value):
        if value.__class__ is datetime and value.tzinfo is None:
            return sqlite_datetime_text(value)
        return stock(value)
    return process


def _bound(column: Column, value: Any, dialect) -> Any:
    process = _bind_processor(column, dialect)
    return process(value) if process and value is not None else value


class OneOf(ColumnElement[bool]):
    """`column IN (values)` (or `NOT IN` when `negate`) for the load's and the relay's lookups of
    hundreds of keys at once.

    On PostgreSQL it is `column = ANY(:values)` (`<> ALL`): one array parameter instead of one per
    value, so psycopg need not re-parse a statement with hundreds of placeholders on every call (it
    caches only short statements) and the server plans one short statement. Elsewhere, a plain IN."""

    inherit_cache = False  # the statement is compiled per call: cheap beside a lookup of hundreds of keys
    type = Boolean()

    def __init__(self, column: ColumnElement, values: Iterable[Any], negate: bool = False):
        self.column, self.values, self.negate = column, list(values), negate

    def self_group(self, against=None) -> "OneOf":
        return self  # a comparison already: no "= 1" where a database has no boolean type (SQLite)


def one_of(column: ColumnElement, values: Iterable[Any]) -> OneOf:
    return OneOf(column, values)


def none_of(column: ColumnElement, values: Iterable[Any]) -> OneOf:
    return OneOf(column, values, negate=True)


@compiles(OneOf)
def _in(element: OneOf, compiler, **kw) -> str:
    test = element.column.not_in if element.negate else element.column.in_
    return compiler.process(test(element.values), **kw)


@compiles(OneOf, "postgresql")
def _any(element: OneOf, compiler, **kw) -> str:
    values = bindparam(None, element.values, type_=ARRAY(element.column.type))
    test = element.column != all_(values) if element.negate else element.column == any_(values)
    return compiler.process(test, **kw)

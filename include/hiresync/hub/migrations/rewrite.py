"""Rewriting a column's values in Python, for migrations whose conversion SQLite cannot do in SQL."""

from __future__ import annotations

from typing import Any, Callable

import sqlalchemy as sa
from alembic import op

CHUNK = 2000


def rewrite_column(table: str, column: str, convert: Callable[[Any], Any]) -> None:
    """Every non-null value of the column through `convert`, in chunks by primary key."""
    bind = op.get_bind()
    t = sa.table(table, sa.column('id', sa.Integer()), sa.column(column))
    last = 0
    while True:
        rows = bind.execute(sa.select(t.c.id, t.c[column]).where(t.c.id > last, t.c[column].is_not(None))
                            .order_by(t.c.id).limit(CHUNK)).all()
        if not rows:
            return
        bind.execute(sa.update(t).where(t.c.id == sa.bindparam('row_id')).values({column: sa.bindparam('value')}),
                     [{'row_id': i, 'value': convert(v)} for i, v in rows])
        last = rows[-1][0]

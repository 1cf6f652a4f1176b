"""The Alembic migrations build exactly the schema the models describe, on every hub database."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from hiresync.hub.models import Base
from hiresync.hub.store import engine_for


def test_migrations_match_the_models(hub_database):
    with engine_for(hub_database).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    # Type affinity differences (e.g. MySQL TINYINT for booleans) would show here too: none expected.
    assert diff == []

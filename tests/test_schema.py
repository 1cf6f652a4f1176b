"""The Alembic migrations build exactly the schema the models describe, on every hub database."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from hiresync.hub.models import Base
from hiresync.hub.store import alembic_config, engine_for


def test_migrations_match_the_models(hub_database):
    with engine_for(hub_database).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    # Type affinity differences (e.g. MySQL TINYINT for booleans) would show here too: none expected.
    assert diff == []


def test_migrations_go_down_to_nothing_and_back_up(blank_database):
    """Every downgrade runs (MariaDB refuses to drop an index a foreign key uses on its own: 0001,
    0005 and 0013 once did), and the way back up ends at the models' schema again."""
    url = blank_database
    for step, target in ((command.upgrade, "head"), (command.downgrade, "base"), (command.upgrade, "head")):
        with engine_for(url).begin() as conn:
            cfg = alembic_config(url, conn)
            step(cfg, target)
    with engine_for(url).connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []

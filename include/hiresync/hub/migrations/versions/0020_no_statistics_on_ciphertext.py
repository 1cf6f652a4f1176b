"""PostgreSQL keeps no statistics on encrypted columns.

A ciphertext is random bytes: no query filters or joins on it, and no histogram or list of common
values can say anything about it. Yet sampling them (a raw payload is about a kilobyte) was about a
third of each ANALYZE of the tables the load writes, which the load runs during and after every
large run (hiresync.pipeline.load) and autovacuum runs again later (docs/benchmarks.md).
MySQL/MariaDB and SQLite have no per-column setting of this kind.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

CIPHERTEXT = {
    "candidates": ("full_name_enc", "national_id_enc", "mobile_enc", "email_enc"),
    "interview_results": ("video_url_enc",),
    "raw_payloads": ("payload_enc",),
    "outbox": ("payload_enc",),
    "inbox": ("payload_enc",),
    "performance_ratings": ("rating_enc",),
}


def _set(target: int) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in CIPHERTEXT.items():
        op.execute(f"ALTER TABLE {table} " + ", ".join(f"ALTER COLUMN {c} SET STATISTICS {target}" for c in columns))


def upgrade() -> None:
    _set(0)


def downgrade() -> None:
    _set(-1)  # the server's default_statistics_target again

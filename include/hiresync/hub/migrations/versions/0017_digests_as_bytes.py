"""Digests are stored as their 32 bytes, not 64 hex characters (models.Digest).

Payload and content hashes, idempotency keys and blind indexes: half the size in the row and in
every index that holds one, about 400 bytes per stored result. Existing values are converted in
place: in SQL on PostgreSQL and MariaDB, whose columns become bytea and VARBINARY(32); on SQLite, in
Python (its unhex() is newer than the SQLite Python 3.11 ships), and the columns keep their declared
VARCHAR(64), as 0016 explains. Stop syncs while upgrading: a process still running older code
would write hex that the new code's lookups, comparing bytes, do not find.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""
from alembic import op

from hiresync.hub.migrations.rewrite import rewrite_column

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

# (table, column, nullable)
COLUMNS = (
    ('candidates', 'national_id_bidx', False),
    ('candidates', 'mobile_bidx', True),
    ('candidates', 'email_bidx', True),
    ('interview_results', 'content_hash', False),
    ('raw_payloads', 'payload_hash', False),
    ('record_lineage', 'payload_hash', False),
    ('outbox', 'idempotency_key', False),
    ('file_drops', 'content_hash', False),
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table, column, nullable in COLUMNS:
        null = 'NULL' if nullable else 'NOT NULL'
        if dialect == 'postgresql':
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE bytea USING decode({column}, 'hex')")
        elif dialect in ('mysql', 'mariadb'):
            op.execute(f"ALTER TABLE {table} MODIFY {column} VARBINARY(64) {null}")
            op.execute(f"UPDATE {table} SET {column} = UNHEX({column}) WHERE {column} IS NOT NULL")
            op.execute(f"ALTER TABLE {table} MODIFY {column} VARBINARY(32) {null}")
        else:
            rewrite_column(table, column, lambda text: bytes.fromhex(text) if isinstance(text, str) else text)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table, column, nullable in COLUMNS:
        null = 'NULL' if nullable else 'NOT NULL'
        if dialect == 'postgresql':
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE varchar(64) USING encode({column}, 'hex')")
        elif dialect in ('mysql', 'mariadb'):
            op.execute(f"ALTER TABLE {table} MODIFY {column} VARBINARY(64) {null}")
            op.execute(f"UPDATE {table} SET {column} = LOWER(HEX({column})) WHERE {column} IS NOT NULL")
            op.execute(f"ALTER TABLE {table} MODIFY {column} VARCHAR(64) {null}")
        else:
            rewrite_column(table, column, lambda value: bytes(value).hex() if isinstance(value, bytes) else value)

"""Encrypted columns hold bytes, not base64 text (models.Ciphertext).

A token "v<n>:<base64>" is stored as b"v<n>:" followed by the nonce and ciphertext themselves:
a third less for every payload and personal value (about 300 bytes per stored result). Existing
values are converted in place: in SQL on PostgreSQL and MariaDB, whose columns become bytea and
LONGBLOB. On SQLite, which has no base64 function, in Python, and the columns keep their declared
TEXT type: SQLite stores a BLOB in a TEXT column as it is, and changing the declared type would mean
recreating the tables, which fails inside the migration's transaction for tables other tables'
foreign keys point at (SQLite counts the dropped table's references as broken at commit).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""
import base64

from alembic import op

from hiresync.hub.migrations.rewrite import rewrite_column

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

# (table, column, nullable)
COLUMNS = (
    ('candidates', 'full_name_enc', False),
    ('candidates', 'national_id_enc', False),
    ('candidates', 'mobile_enc', True),
    ('candidates', 'email_enc', True),
    ('interview_results', 'video_url_enc', True),
    ('raw_payloads', 'payload_enc', True),
    ('outbox', 'payload_enc', True),
    ('inbox', 'payload_enc', False),
    ('performance_ratings', 'rating_enc', False),
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table, column, nullable in COLUMNS:
        if dialect == 'postgresql':
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE bytea USING "
                       f"convert_to(split_part({column}, ':', 1) || ':', 'UTF8') || decode(split_part({column}, ':', 2), 'base64')")
        elif dialect in ('mysql', 'mariadb'):
            op.execute(f"ALTER TABLE {table} MODIFY {column} LONGBLOB {'NULL' if nullable else 'NOT NULL'}")
            op.execute(f"UPDATE {table} SET {column} = CONCAT(SUBSTRING_INDEX({column}, ':', 1), ':', "
                       f"FROM_BASE64(SUBSTRING({column}, LOCATE(':', {column}) + 1))) WHERE {column} IS NOT NULL")
        else:
            rewrite_column(table, column, _to_bytes)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table, column, nullable in COLUMNS:
        if dialect == 'postgresql':
            cut = f"position('\\x3a'::bytea in {column})"
            op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE text USING "
                       f"convert_from(substring({column} from 1 for {cut}), 'UTF8') || "
                       f"replace(encode(substring({column} from {cut} + 1), 'base64'), E'\\n', '')")
        elif dialect in ('mysql', 'mariadb'):
            op.execute(f"UPDATE {table} SET {column} = CONCAT(SUBSTRING_INDEX({column}, ':', 1), ':', "
                       f"REPLACE(TO_BASE64(SUBSTRING({column}, LOCATE(':', {column}) + 1)), '\\n', '')) "
                       f"WHERE {column} IS NOT NULL")
            op.execute(f"ALTER TABLE {table} MODIFY {column} TEXT {'NULL' if nullable else 'NOT NULL'}")
        else:
            rewrite_column(table, column, _to_text)


def _to_bytes(token) -> bytes:
    head, _, body = (token.decode() if isinstance(token, bytes) else token).partition(':')
    return head.encode() + b':' + base64.b64decode(body)


def _to_text(value) -> str:
    head, _, body = bytes(value).partition(b':')
    return f"{head.decode()}:{base64.b64encode(body).decode()}"

"""Raw payloads are compressed with a zstd dictionary per source: the dictionaries' table.

One vendor result alone compresses to about 60% with zstd: the frame has only itself to find
repeats in. Its source's other results share most of its bytes (keys, codes, labels, much of the
wording), and a dictionary trained on them lets each result refer to those instead (docs/benchmarks.md:
the raw payloads, the hub's largest table, shrink by more than half on the
simulator's data).
Payloads stored before keep their own compression; both read (hiresync.privacy.payloads).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

_TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')  # as 0011


def upgrade() -> None:
    op.create_table(
        'payload_dictionaries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('source', sa.String(length=64), nullable=False),
        sa.Column('dict_id', sa.BigInteger(), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.Column('samples', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.String(length=160), nullable=False),
        sa.Column('created_at', _TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('source'),
        sa.UniqueConstraint('dict_id'),
    )


def downgrade() -> None:
    op.drop_table('payload_dictionaries')

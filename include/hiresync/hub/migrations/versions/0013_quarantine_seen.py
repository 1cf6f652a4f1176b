"""Quarantine rows are keyed by the payload they hold: the same defective payload seen again bumps
`seen_count` and `last_seen_at` instead of adding a row (a re-read overlap window doubled the
quarantine). And a lease row per source: two syncs of one source never run at once.

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0013'
down_revision = '0011'
branch_labels = None
depends_on = None

_TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')


def upgrade() -> None:
    op.create_table('source_locks',
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('run_id', sa.String(length=160), nullable=False),
    sa.Column('holder', sa.String(length=120), nullable=False),
    sa.Column('acquired_at', _TIME, nullable=False),
    sa.Column('expires_at', _TIME, nullable=False),
    sa.PrimaryKeyConstraint('source')
    )
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seen_count', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('last_seen_at', _TIME, nullable=True))
        batch_op.create_index('ix_quarantine_raw_payload', ['raw_payload_id'])


def downgrade() -> None:
    op.drop_table('source_locks')
    bind = op.get_bind()
    if bind.dialect.name in ('mysql', 'mariadb') and 'raw_payload_id' not in {
            i['name'] for i in sa.inspect(bind).get_indexes('quarantine')}:
        # InnoDB refuses to drop the only index its foreign key on raw_payload_id can use: give it
        # the one it had made for itself before this revision (named after the column).
        op.create_index('raw_payload_id', 'quarantine', ['raw_payload_id'])
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_index('ix_quarantine_raw_payload')
        batch_op.drop_column('last_seen_at')
        batch_op.drop_column('seen_count')

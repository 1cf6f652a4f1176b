"""Blind indexes get a key of their own per field (#14 finding 12). `candidates.bidx_scheme` records
how a row's *_bidx columns were computed: every existing row gets 1 (the old shared key per key
version), rows written by the new code 2. The re-index itself needs the keys, which a migration
does not have: `privacy.keys.hub_keys` does it at the start of the next sync, in batches.

Downgrading below 0014 after that re-index leaves indexes the older code cannot match (it would
create returning candidates again): restore a backup instead.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('candidates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bidx_scheme', sa.Integer(), nullable=False, server_default='1'))
        batch_op.create_index('ix_candidates_bidx_scheme', ['bidx_scheme'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('candidates', schema=None) as batch_op:
        batch_op.drop_index('ix_candidates_bidx_scheme')
        batch_op.drop_column('bidx_scheme')

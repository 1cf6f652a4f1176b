"""operational state, mapping versions, outbox leases

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mapping_versions',
    sa.Column('mapping', sa.String(length=64), nullable=False),
    sa.Column('version', sa.String(length=32), nullable=False),
    sa.Column('fingerprint', sa.String(length=16), nullable=False),
    sa.Column('spec_text', sa.Text(), nullable=False),
    sa.Column('first_run_id', sa.String(length=160), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('mapping', 'version', 'fingerprint')
    )
    op.create_table('source_state',
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('run_id', sa.String(length=160), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('source')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('claimed_until', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('response_status', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('target_ref', sa.String(length=200), nullable=True))

    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resolved_run_id', sa.String(length=160), nullable=True))
        batch_op.add_column(sa.Column('resolved_at', sa.DateTime(), nullable=True))

    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('validation_summary', sa.JSON(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('validation_summary')

    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_column('resolved_at')
        batch_op.drop_column('resolved_run_id')

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('target_ref')
        batch_op.drop_column('response_status')
        batch_op.drop_column('claimed_by')
        batch_op.drop_column('claimed_until')
        batch_op.drop_column('next_attempt_at')

    op.drop_table('source_state')
    op.drop_table('mapping_versions')

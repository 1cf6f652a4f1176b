"""audit trail, identity reviews, purgeable payloads, erase requests

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('subject_ref', sa.String(length=200), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_subject', ['subject_ref'], unique=False)

    op.create_table('identity_reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('vendor_result_id', sa.String(length=128), nullable=False),
    sa.Column('candidate_id', sa.Integer(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('resolution', sa.String(length=20), nullable=True),
    sa.Column('resolved_by', sa.String(length=64), nullable=True),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['candidate_id'], ['candidates.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('identity_reviews', schema=None) as batch_op:
        batch_op.create_index('ix_identity_review_record', ['source', 'vendor_result_id'], unique=False)

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), server_default='upsert', nullable=False))
        batch_op.alter_column('result_id',
               existing_type=sa.INTEGER(),
               nullable=True)

    with op.batch_alter_table('raw_payloads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purged_at', sa.DateTime(), nullable=True))
        batch_op.alter_column('payload_enc',
               existing_type=sa.TEXT(),
               nullable=True)



def downgrade() -> None:
    with op.batch_alter_table('raw_payloads', schema=None) as batch_op:
        batch_op.alter_column('payload_enc',
               existing_type=sa.TEXT(),
               nullable=False)
        batch_op.drop_column('purged_at')

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.alter_column('result_id',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.drop_column('kind')

    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_subject')

    op.drop_table('audit_events')
    with op.batch_alter_table('identity_reviews', schema=None) as batch_op:
        batch_op.drop_index('ix_identity_review_record')
    op.drop_table('identity_reviews')

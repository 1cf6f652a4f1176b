"""initial hub schema

Revision ID: 0001
Revises: 
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('candidates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('candidate_key', sa.String(length=36), nullable=False),
    sa.Column('key_version', sa.Integer(), nullable=False),
    sa.Column('full_name_enc', sa.Text(), nullable=False),
    sa.Column('full_name_masked', sa.String(length=64), nullable=False),
    sa.Column('national_id_enc', sa.Text(), nullable=False),
    sa.Column('national_id_bidx', sa.String(length=64), nullable=False),
    sa.Column('national_id_masked', sa.String(length=32), nullable=False),
    sa.Column('mobile_enc', sa.Text(), nullable=True),
    sa.Column('mobile_bidx', sa.String(length=64), nullable=True),
    sa.Column('mobile_masked', sa.String(length=32), nullable=True),
    sa.Column('email_enc', sa.Text(), nullable=True),
    sa.Column('email_bidx', sa.String(length=64), nullable=True),
    sa.Column('email_masked', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('candidate_key'),
    sa.UniqueConstraint('national_id_bidx')
    )
    with op.batch_alter_table('candidates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_candidates_email_bidx'), ['email_bidx'], unique=False)
        batch_op.create_index(batch_op.f('ix_candidates_mobile_bidx'), ['mobile_bidx'], unique=False)

    op.create_table('raw_payloads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('vendor_result_id', sa.String(length=128), nullable=False),
    sa.Column('payload_hash', sa.String(length=64), nullable=False),
    sa.Column('payload_enc', sa.Text(), nullable=False),
    sa.Column('run_id', sa.String(length=160), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'vendor_result_id', 'payload_hash', name='uq_raw_payload')
    )
    op.create_table('runs',
    sa.Column('id', sa.String(length=160), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('pulled_since', sa.DateTime(), nullable=True),
    sa.Column('watermark_after', sa.DateTime(), nullable=True),
    sa.Column('mapping_version', sa.String(length=32), nullable=True),
    sa.Column('pulled', sa.Integer(), nullable=False),
    sa.Column('inserted', sa.Integer(), nullable=False),
    sa.Column('updated', sa.Integer(), nullable=False),
    sa.Column('unchanged', sa.Integer(), nullable=False),
    sa.Column('quarantined', sa.Integer(), nullable=False),
    sa.Column('delivered', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_runs_source'), ['source'], unique=False)

    op.create_table('watermarks',
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('cursor_value', sa.DateTime(), nullable=False),
    sa.Column('run_id', sa.String(length=160), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('source')
    )
    op.create_table('candidate_vendor_ids',
    sa.Column('vendor', sa.String(length=64), nullable=False),
    sa.Column('vendor_candidate_id', sa.String(length=128), nullable=False),
    sa.Column('candidate_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['candidate_id'], ['candidates.id'], ),
    sa.PrimaryKeyConstraint('vendor', 'vendor_candidate_id')
    )
    with op.batch_alter_table('candidate_vendor_ids', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_candidate_vendor_ids_candidate_id'), ['candidate_id'], unique=False)

    op.create_table('interview_results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('vendor', sa.String(length=64), nullable=False),
    sa.Column('vendor_result_id', sa.String(length=128), nullable=False),
    sa.Column('candidate_id', sa.Integer(), nullable=False),
    sa.Column('position_code', sa.String(length=64), nullable=True),
    sa.Column('position_name', sa.String(length=255), nullable=True),
    sa.Column('department', sa.String(length=255), nullable=True),
    sa.Column('business_unit', sa.String(length=255), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('completed_at', sa.DateTime(), nullable=True),
    sa.Column('overall_score', sa.Numeric(precision=9, scale=2, asdecimal=False), nullable=True),
    sa.Column('raw_score', sa.Numeric(precision=9, scale=2, asdecimal=False), nullable=True),
    sa.Column('score_scale', sa.Numeric(precision=9, scale=2, asdecimal=False), nullable=True),
    sa.Column('ai_comment', sa.Text(), nullable=True),
    sa.Column('recommendation', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('video_url_enc', sa.Text(), nullable=True),
    sa.Column('video_expires_at', sa.DateTime(), nullable=True),
    sa.Column('report_url', sa.Text(), nullable=True),
    sa.Column('interviewer', sa.String(length=255), nullable=True),
    sa.Column('source_updated_at', sa.DateTime(), nullable=False),
    sa.Column('mapping_version', sa.String(length=32), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('first_run_id', sa.String(length=160), nullable=False),
    sa.Column('last_run_id', sa.String(length=160), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['candidate_id'], ['candidates.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('vendor', 'vendor_result_id', name='uq_result_vendor_key')
    )
    with op.batch_alter_table('interview_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_interview_results_candidate_id'), ['candidate_id'], unique=False)

    op.create_table('quarantine',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.String(length=160), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('vendor_result_id', sa.String(length=128), nullable=False),
    sa.Column('raw_payload_id', sa.Integer(), nullable=False),
    sa.Column('reason_code', sa.String(length=40), nullable=False),
    sa.Column('problems', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['raw_payload_id'], ['raw_payloads.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quarantine_run_id'), ['run_id'], unique=False)
        batch_op.create_index('ix_quarantine_source_status', ['source', 'status'], unique=False)

    op.create_table('dimension_scores',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('result_id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('score', sa.Numeric(precision=9, scale=2, asdecimal=False), nullable=True),
    sa.Column('raw_score', sa.Numeric(precision=9, scale=2, asdecimal=False), nullable=True),
    sa.Column('scale', sa.Numeric(precision=9, scale=2, asdecimal=False), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['result_id'], ['interview_results.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('dimension_scores', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dimension_scores_result_id'), ['result_id'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('target', sa.String(length=32), nullable=False),
    sa.Column('result_id', sa.Integer(), nullable=False),
    sa.Column('result_version', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('payload_enc', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('run_id', sa.String(length=160), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['result_id'], ['interview_results.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('target', 'idempotency_key', name='uq_outbox_idempotency')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_pending', ['target', 'status', 'id'], unique=False)

    op.create_table('record_lineage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.String(length=160), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('vendor_result_id', sa.String(length=128), nullable=False),
    sa.Column('payload_hash', sa.String(length=64), nullable=False),
    sa.Column('raw_payload_id', sa.Integer(), nullable=False),
    sa.Column('result_id', sa.Integer(), nullable=True),
    sa.Column('mapping_version', sa.String(length=32), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['raw_payload_id'], ['raw_payloads.id'], ),
    sa.ForeignKeyConstraint(['result_id'], ['interview_results.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('record_lineage', schema=None) as batch_op:
        batch_op.create_index('ix_lineage_record', ['source', 'vendor_result_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_record_lineage_run_id'), ['run_id'], unique=False)



def downgrade() -> None:
    # Tables only, dependents first: their indexes go with them. Dropping an index on its own first
    # fails on MariaDB when a foreign key uses it.
    for table in ('record_lineage', 'outbox', 'dimension_scores', 'quarantine', 'interview_results',
                  'candidate_vendor_ids', 'watermarks', 'runs', 'raw_payloads', 'candidates'):
        op.drop_table(table)

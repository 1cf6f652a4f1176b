"""MySQL/MariaDB: keep microseconds in every timestamp (DATETIME(6)); other databases already do.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# (table, column, nullable) of every timestamp at this revision.
COLUMNS = {
    'audit_events': [('created_at', False)],
    'candidates': [('created_at', False), ('updated_at', False)],
    'file_drops': [('received_at', False)],
    'identity_reviews': [('resolved_at', True), ('created_at', False)],
    'inbox': [('received_at', False)],
    'interview_results': [('started_at', True), ('completed_at', True), ('video_expires_at', True),
                          ('source_updated_at', False), ('updated_at', False)],
    'key_versions': [('registered_at', False)],
    'mapping_versions': [('created_at', False)],
    'outbox': [('next_attempt_at', True), ('claimed_until', True), ('created_at', False), ('sent_at', True)],
    'quarantine': [('created_at', False), ('resolved_at', True)],
    'raw_payloads': [('received_at', False), ('purged_at', True)],
    'record_lineage': [('created_at', False)],
    'runs': [('started_at', False), ('finished_at', True), ('pulled_since', True), ('watermark_after', True)],
    'source_state': [('updated_at', False)],
    'status_events': [('occurred_at', False), ('recorded_at', False)],
    'watermarks': [('cursor_value', False), ('updated_at', False)],
}


def _alter(fsp: int) -> None:
    if op.get_bind().dialect.name != 'mysql':
        return
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch_op:
            for name, nullable in columns:
                batch_op.alter_column(name, type_=mysql.DATETIME(fsp=fsp), existing_nullable=nullable)


def upgrade() -> None:
    _alter(6)


def downgrade() -> None:
    _alter(0)

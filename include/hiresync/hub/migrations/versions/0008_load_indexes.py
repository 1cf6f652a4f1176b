"""Indexes the load step's lookups need: raw payloads by (source, hash), outbox rows by idempotency key.

Without them a lookup used only the `source` prefix of uq_raw_payload, and the outbox key check
scanned the whole table.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_raw_payload_hash', 'raw_payloads', ['source', 'payload_hash'])
    op.create_index('ix_outbox_idempotency', 'outbox', ['idempotency_key'])


def downgrade() -> None:
    op.drop_index('ix_outbox_idempotency', table_name='outbox')
    op.drop_index('ix_raw_payload_hash', table_name='raw_payloads')

"""The load's lookups use the unique keys' indexes; the two extra indexes of 0008 go.

Raw payloads are looked up by (source, vendor result id, hash), the leading columns of
uq_raw_payload, and outbox rows by (target, idempotency key), those of uq_outbox_idempotency. The
indexes 0008 added for the shorter lookups cost about 180 bytes per stored result and an index
update per inserted row.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_outbox_idempotency', table_name='outbox')
    op.drop_index('ix_raw_payload_hash', table_name='raw_payloads')


def downgrade() -> None:
    op.create_index('ix_raw_payload_hash', 'raw_payloads', ['source', 'payload_hash'])
    op.create_index('ix_outbox_idempotency', 'outbox', ['idempotency_key'])

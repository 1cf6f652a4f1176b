"""The outbox holds references, not copies: an upsert row names the result version it delivers and
the relay renders its body from the stored raw payload with the mapping spec that loaded it
(`mapping_fingerprint`, whose text `mapping_versions` keeps), so each payload is kept encrypted once.
`payload_enc` stays for erase requests and workflow events, whose bodies are not results.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('raw_payload_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('mapping_fingerprint', sa.String(length=12), nullable=True))
        batch_op.alter_column('payload_enc', existing_type=sa.Text(), nullable=True)
        batch_op.create_foreign_key('fk_outbox_raw_payload', 'raw_payloads', ['raw_payload_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_constraint('fk_outbox_raw_payload', type_='foreignkey')
        batch_op.alter_column('payload_enc', existing_type=sa.Text(), nullable=False)
        batch_op.drop_column('mapping_fingerprint')
        batch_op.drop_column('raw_payload_id')

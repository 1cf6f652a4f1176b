"""Outbox rows are found by their result: an index on outbox.result_id.

The relay's check that a candidate's rows go out in order looks for earlier pending rows of the
batch's candidates. Without this index PostgreSQL found them by scanning the pending part of
ix_outbox_pending below the batch, where every row relayed since the last vacuum has left dead
entries, so each batch's check grew slower as a run went on. Erasure, which deletes
results, also finds their outbox rows through it. MariaDB had made an index of its own for the
foreign key; this one takes its place.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_outbox_result', 'outbox', ['result_id'])


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name in ('mysql', 'mariadb') and 'result_id' not in {
            i['name'] for i in sa.inspect(bind).get_indexes('outbox')}:
        # InnoDB refuses to drop the only index its foreign key can use: give it back the one it had
        # made for itself (named after the column), as 0013 does.
        op.create_index('result_id', 'outbox', ['result_id'])
    op.drop_index('ix_outbox_result', table_name='outbox')

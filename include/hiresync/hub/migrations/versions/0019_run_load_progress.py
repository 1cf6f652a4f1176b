"""A run's load commits batch by batch: runs.load_progress says how far it got.

Each micro-batch of a load commits on its own, together with this column: the batches done, the
rows they held and their outcome counts. A retried load of the same run skips the batches done and
carries their counts, so the run's accounting is what one uninterrupted load would have written.
The run stays "extracting" (not loaded, the watermark where it was) until its last batch and its
closing transaction commit; then the column is cleared.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('runs', sa.Column('load_progress', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs') as batch_op:  # SQLite: batch mode, as 0002
        batch_op.drop_column('load_progress')

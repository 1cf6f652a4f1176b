"""performance ratings (绩效) per candidate and period, for the HR analytics

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0011'
down_revision = '0009'
branch_labels = None
depends_on = None

_TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')


def upgrade() -> None:
    op.create_table('performance_ratings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('candidate_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('rating_enc', sa.Text(), nullable=False),
    sa.Column('file_drop_id', sa.Integer(), nullable=True),
    sa.Column('recorded_at', _TIMESTAMP, nullable=False),
    sa.ForeignKeyConstraint(['candidate_id'], ['candidates.id'], ),
    sa.ForeignKeyConstraint(['file_drop_id'], ['file_drops.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('candidate_id', 'period', name='uq_performance_rating')
    )
    with op.batch_alter_table('performance_ratings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_performance_ratings_candidate_id'), ['candidate_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('performance_ratings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_performance_ratings_candidate_id'))
    op.drop_table('performance_ratings')

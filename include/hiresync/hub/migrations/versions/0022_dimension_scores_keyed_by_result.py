"""Dimension scores keyed by (result, place in the vendor's list) instead of a surrogate id.

Every read and delete of dimension rows is by result: the surrogate id's primary-key index served
none of them, beside the index on result_id that served all. One index (result_id, seq) now does,
and a result's dimensions keep the vendor's order by `seq` rather than by insert order. About 90
bytes per stored result on PostgreSQL (docs/benchmarks.md). Rebuilt as a new table and renamed:
the same statements on PostgreSQL, MySQL/MariaDB and SQLite, existing rows numbered in id order.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

_SCORE = sa.Numeric(precision=9, scale=2, asdecimal=False)
_VALUES = "code, name, score, raw_score, scale, comment"


def _values() -> list:
    return [sa.Column('code', sa.String(length=64), nullable=False), sa.Column('name', sa.String(length=255)),
            sa.Column('score', _SCORE), sa.Column('raw_score', _SCORE), sa.Column('scale', _SCORE),
            sa.Column('comment', sa.Text())]


def upgrade() -> None:
    op.create_table(
        'dimension_scores_keyed',
        sa.Column('result_id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.SmallInteger(), nullable=False),
        *_values(),
        sa.ForeignKeyConstraint(['result_id'], ['interview_results.id']),
        sa.PrimaryKeyConstraint('result_id', 'seq'),
    )
    op.execute(f"INSERT INTO dimension_scores_keyed (result_id, seq, {_VALUES}) "
               f"SELECT result_id, ROW_NUMBER() OVER (PARTITION BY result_id ORDER BY id) - 1, {_VALUES} "
               f"FROM dimension_scores")
    op.drop_table('dimension_scores')  # with its indexes
    op.rename_table('dimension_scores_keyed', 'dimension_scores')


def downgrade() -> None:
    op.create_table(
        'dimension_scores_by_id',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('result_id', sa.Integer(), nullable=False),
        *_values(),
        sa.ForeignKeyConstraint(['result_id'], ['interview_results.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.execute(f"INSERT INTO dimension_scores_by_id (result_id, {_VALUES}) "
               f"SELECT result_id, {_VALUES} FROM dimension_scores ORDER BY result_id, seq")
    op.drop_table('dimension_scores')
    op.rename_table('dimension_scores_by_id', 'dimension_scores')
    op.create_index('ix_dimension_scores_result_id', 'dimension_scores', ['result_id'])

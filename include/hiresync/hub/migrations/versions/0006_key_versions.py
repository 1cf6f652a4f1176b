"""key version fingerprints

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('key_versions',
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('registered_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('version')
    )


def downgrade() -> None:
    op.drop_table('key_versions')

"""sweep.min_ratings: how many reviewers each generation of a sweep should get

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 03:00:00
"""

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sweep', schema=None) as batch_op:
        batch_op.add_column(sa.Column('min_ratings', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sweep', schema=None) as batch_op:
        batch_op.drop_column('min_ratings')

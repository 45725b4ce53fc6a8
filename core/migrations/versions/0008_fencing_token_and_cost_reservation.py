"""fencing token and cost reservation on a cell; a sweep's endpoint URL

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 02:50:00
"""

import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('generation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fence', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('reserved_usd', sa.Float(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('create_sent_at', sa.DateTime(timezone=True),
                                      nullable=True))
    with op.batch_alter_table('sweep', schema=None) as batch_op:
        batch_op.add_column(sa.Column('base_url', sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sweep', schema=None) as batch_op:
        batch_op.drop_column('base_url')
    with op.batch_alter_table('generation', schema=None) as batch_op:
        batch_op.drop_column('create_sent_at')
        batch_op.drop_column('reserved_usd')
        batch_op.drop_column('fence')

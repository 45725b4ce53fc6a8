"""any model: how it is created, every billing unit with its date, the model axis,
Cancel-After per sweep, several outputs per cell

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 03:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('model_spec', schema=None) as batch_op:
        batch_op.add_column(sa.Column('create_via', sa.String(length=16), nullable=False,
                                      server_default='versioned'))
        batch_op.add_column(sa.Column('deployment', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('usd_per_megapixel', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('usd_per_input_megapixel', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('usd_per_run', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('price_as_of', sa.String(length=10), nullable=True))
        batch_op.alter_column('pricing_kind', existing_type=sa.String(length=16), nullable=True)
    with op.batch_alter_table('sweep', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancel_after_s', sa.Integer(), nullable=True))
    with op.batch_alter_table('generation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('model_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('extra_outputs', sa.JSON(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_generation_model_id_model_spec'),
                                    'model_spec', ['model_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('generation', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_generation_model_id_model_spec'), type_='foreignkey')
        batch_op.drop_column('extra_outputs')
        batch_op.drop_column('model_id')
    with op.batch_alter_table('sweep', schema=None) as batch_op:
        batch_op.drop_column('cancel_after_s')
    with op.batch_alter_table('model_spec', schema=None) as batch_op:
        batch_op.alter_column('pricing_kind', existing_type=sa.String(length=16), nullable=False)
        batch_op.drop_column('price_as_of')
        batch_op.drop_column('usd_per_run')
        batch_op.drop_column('usd_per_input_megapixel')
        batch_op.drop_column('usd_per_megapixel')
        batch_op.drop_column('deployment')
        batch_op.drop_column('create_via')

"""output metrics

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 02:39:26.291826
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('output_metrics',
    sa.Column('generation_id', sa.Integer(), nullable=False),
    sa.Column('similarity', sa.Float(), nullable=False),
    sa.Column('phash_distance', sa.Integer(), nullable=False),
    sa.Column('change', sa.Float(), nullable=False),
    sa.Column('sharpness', sa.Float(), nullable=False),
    sa.Column('identity', sa.Float(), nullable=True),
    sa.Column('identity_distance', sa.Float(), nullable=True),
    sa.Column('face_in_input', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('measured_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['generation_id'], ['generation.id'], name=op.f('fk_output_metrics_generation_id_generation'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('generation_id', name=op.f('pk_output_metrics'))
    )



def downgrade() -> None:

    op.drop_table('output_metrics')


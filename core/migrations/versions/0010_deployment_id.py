"""deployment id: a random name for this database, which prefixes its Redis queue so two
deployments sharing one Redis database never take each other's jobs

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 06:20:00
"""

import datetime as dt
import uuid

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

_app_setting = sa.table('app_setting', sa.column('key', sa.String), sa.column('value', sa.JSON),
                        sa.column('updated_by', sa.String), sa.column('updated_at', sa.DateTime))


def upgrade() -> None:
    op.bulk_insert(_app_setting, [{
        'key': 'deployment_id', 'value': {'value': uuid.uuid4().hex[:12]},
        'updated_by': 'migration', 'updated_at': dt.datetime.now(dt.timezone.utc),
    }])


def downgrade() -> None:
    op.execute(_app_setting.delete().where(_app_setting.c.key == 'deployment_id'))

"""a coordinator's open referrals in deadline order (the national PHC queue's page)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 20:45:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

OPEN = (
    "state IN ('new', 'triaging', 'referred', 'waitlisted', 'proposed', 'accepted', "
    "'in_progress')"
)


def upgrade() -> None:
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.create_index(
            'ix_referral_open_territory_due', ['territory_id', 'due_at', 'id'], unique=False,
            sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN),
        )


def downgrade() -> None:
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.drop_index('ix_referral_open_territory_due')

"""referrals waiting for a pool, by pool (partial index)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 18:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.create_index(
            'ix_referral_waiting_pool', ['pool_id'], unique=False,
            sqlite_where=sa.text("state = 'waitlisted'"),
            postgresql_where=sa.text("state = 'waitlisted'"),
        )


def downgrade() -> None:
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.drop_index('ix_referral_waiting_pool')

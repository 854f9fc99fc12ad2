"""referrals indexed by frein (the intake's "never routed" anti-join)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 17:40:00
"""
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_referral_frein_id'), ['frein_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_referral_frein_id'))

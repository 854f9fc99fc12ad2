"""outbox: the orientation a partner mail is about, and the "cancelled" status

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 10:00:00

A partner mail (orientation, reminder) whose orientation ended before it was sent or
gathered in the partner digest is marked "cancelled" instead of being sent; the row names
its referral so the relay and the digest can check it.
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_OLD = "status IN ('pending', 'sent', 'parked', 'digested', 'skipped')"
_NEW = "status IN ('pending', 'sent', 'parked', 'digested', 'skipped', 'cancelled')"


def upgrade() -> None:
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('referral_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_outbox_message_referral_id_referral'),
            'referral',
            ['referral_id'],
            ['id'],
        )
        batch_op.create_index(
            batch_op.f('ix_outbox_message_referral_id'), ['referral_id'], unique=False
        )
        batch_op.drop_constraint(batch_op.f('ck_outbox_message_status'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_outbox_message_status'), sa.text(_NEW))


def downgrade() -> None:
    op.execute("UPDATE outbox_message SET status = 'skipped' WHERE status = 'cancelled'")
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_outbox_message_status'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_outbox_message_status'), sa.text(_OLD))
        batch_op.drop_index(batch_op.f('ix_outbox_message_referral_id'))
        batch_op.drop_constraint(
            batch_op.f('fk_outbox_message_referral_id_referral'), type_='foreignkey'
        )
        batch_op.drop_column('referral_id')

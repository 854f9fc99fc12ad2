"""the queue's pages and totals read from indexes: open referrals in priority order per
scope branch (territory × domain, owner, chantier), the totals' covering indexes, a
partner's orientations, and recent events by kind (dashboards)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 19:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

OPEN = (
    "state IN ('new', 'triaging', 'referred', 'waitlisted', 'proposed', 'accepted', "
    "'in_progress')"
)
PARTIAL = {
    "ix_referral_open_age": ["created_at", "id"],
    "ix_referral_open_scope_priority": ["territory_id", "domain", "priority", "id"],
    "ix_referral_open_owner_priority": ["owner_user_id", "priority", "id"],
    "ix_referral_open_chantier_priority": ["chantier_id", "priority", "id"],
}
COVERING = {
    "ix_referral_owner_count": [
        "owner_user_id", "state", "priority", "territory_id", "domain", "due_at"
    ],
    "ix_referral_scope_count": ["territory_id", "domain", "state", "priority", "due_at"],
    "ix_referral_chantier_count": ["chantier_id", "state", "due_at"],
    "ix_referral_offer_state": ["offer_id", "state"],
}
# The covering ones replace these (same leading columns, so every other use is kept).
REPLACED = {
    "ix_referral_owner_queue": ["owner_user_id", "state", "priority"],
    "ix_referral_scope": ["territory_id", "domain", "state", "priority"],
    "ix_referral_chantier_id": ["chantier_id"],
}


def upgrade() -> None:
    with op.batch_alter_table('referral', schema=None) as batch_op:
        for name, cols in PARTIAL.items():
            batch_op.create_index(
                name, cols, unique=False,
                sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN),
            )
        for name, cols in COVERING.items():
            batch_op.create_index(name, cols, unique=False)
        for name in REPLACED:
            batch_op.drop_index(name)
    with op.batch_alter_table('referral_event', schema=None) as batch_op:
        batch_op.create_index('ix_referral_event_action_at', ['action', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('referral_event', schema=None) as batch_op:
        batch_op.drop_index('ix_referral_event_action_at')
    with op.batch_alter_table('referral', schema=None) as batch_op:
        for name, cols in REPLACED.items():
            batch_op.create_index(name, cols, unique=False)
        for name in [*COVERING, *PARTIAL]:
            batch_op.drop_index(name)

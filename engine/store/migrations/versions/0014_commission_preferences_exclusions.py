"""allocation beyond one batch: commission shortlists, stated preferences, the mechanism of
each offer's pools, and offers a person cannot hold together

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 22:10:00

- slot_pool.commission / shortlist_size: a pool given through a commission (CALEOL) gets, per
  unit, a ranked shortlist rang 1..k;
- allocation_proposal.unit_no / rank and the statuses "shortlisted" (a rank not yet offered)
  and "withdrawn" (a rank the commission never reached); unique indexes: one candidate per
  rank of a unit, one offered rank per unit, one shortlist per person at a time;
- allocation_preference: the pools or territories a waitlisted person accepts, in order;
- offer.allocation_mechanism ("optimal" | "stable") and offer.excludes (offer codes).
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

_OLD = "status IN ('proposed', 'validated', 'declined', 'expired')"
_NEW = (
    "status IN ('proposed', 'validated', 'declined', 'expired', 'shortlisted', 'withdrawn')"
)


def upgrade() -> None:
    op.create_table(
        'allocation_preference',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('referral_id', sa.Integer(), nullable=False),
        sa.Column('choices', sa.JSON(), nullable=False),
        sa.Column('recorded_by', sa.Integer(), nullable=True),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ['recorded_by'], ['staff_user.id'],
            name=op.f('fk_allocation_preference_recorded_by_staff_user'),
        ),
        sa.ForeignKeyConstraint(
            ['referral_id'], ['referral.id'],
            name=op.f('fk_allocation_preference_referral_id_referral'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_allocation_preference')),
        sa.UniqueConstraint('referral_id', name=op.f('uq_allocation_preference_referral_id')),
    )
    with op.batch_alter_table('allocation_proposal', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unit_no', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('rank', sa.Integer(), nullable=True))
        batch_op.drop_constraint(batch_op.f('ck_allocation_proposal_status'), type_='check')
        batch_op.create_check_constraint(
            batch_op.f('ck_allocation_proposal_status'), sa.text(_NEW)
        )
        batch_op.create_check_constraint(
            batch_op.f('ck_allocation_proposal_rank_has_unit'),
            sa.text('(rank IS NULL) = (unit_no IS NULL)'),
        )
        batch_op.create_check_constraint(
            batch_op.f('ck_allocation_proposal_rank'), sa.text('rank IS NULL OR rank >= 1')
        )
        batch_op.create_index(
            'uq_allocation_proposal_shortlisted_referral', ['referral_id'], unique=True,
            sqlite_where=sa.text("status = 'shortlisted'"),
            postgresql_where=sa.text("status = 'shortlisted'"),
        )
        batch_op.create_index(
            'uq_allocation_proposal_unit_offered', ['run_id', 'pool_id', 'unit_no'], unique=True,
            sqlite_where=sa.text("rank IS NOT NULL AND status = 'proposed'"),
            postgresql_where=sa.text("rank IS NOT NULL AND status = 'proposed'"),
        )
        batch_op.create_index(
            'uq_allocation_proposal_unit_rank', ['run_id', 'pool_id', 'unit_no', 'rank'],
            unique=True,
            sqlite_where=sa.text('rank IS NOT NULL'),
            postgresql_where=sa.text('rank IS NOT NULL'),
        )
    with op.batch_alter_table('offer', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('excludes', sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(
            sa.Column(
                'allocation_mechanism', sa.String(length=12), nullable=False,
                server_default='optimal',
            )
        )
        batch_op.create_check_constraint(
            batch_op.f('ck_offer_mechanism'),
            sa.text("allocation_mechanism IN ('optimal', 'stable')"),
        )
    with op.batch_alter_table('slot_pool', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('commission', sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column('shortlist_size', sa.Integer(), nullable=False, server_default='3')
        )
        batch_op.create_check_constraint(
            batch_op.f('ck_slot_pool_shortlist_size'),
            sa.text('shortlist_size BETWEEN 1 AND 20'),
        )
    # The defaults served existing rows only: the models set every new row's value.
    with op.batch_alter_table('offer', schema=None) as batch_op:
        batch_op.alter_column('excludes', server_default=None)
        batch_op.alter_column('allocation_mechanism', server_default=None)
    with op.batch_alter_table('slot_pool', schema=None) as batch_op:
        batch_op.alter_column('commission', server_default=None)
        batch_op.alter_column('shortlist_size', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('slot_pool', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_slot_pool_shortlist_size'), type_='check')
        batch_op.drop_column('shortlist_size')
        batch_op.drop_column('commission')
    with op.batch_alter_table('offer', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_offer_mechanism'), type_='check')
        batch_op.drop_column('allocation_mechanism')
        batch_op.drop_column('excludes')
    op.execute("DELETE FROM allocation_proposal WHERE status IN ('shortlisted', 'withdrawn')")
    with op.batch_alter_table('allocation_proposal', schema=None) as batch_op:
        batch_op.drop_index('uq_allocation_proposal_unit_rank')
        batch_op.drop_index('uq_allocation_proposal_unit_offered')
        batch_op.drop_index('uq_allocation_proposal_shortlisted_referral')
        batch_op.drop_constraint(batch_op.f('ck_allocation_proposal_rank'), type_='check')
        batch_op.drop_constraint(
            batch_op.f('ck_allocation_proposal_rank_has_unit'), type_='check'
        )
        batch_op.drop_constraint(batch_op.f('ck_allocation_proposal_status'), type_='check')
        batch_op.create_check_constraint(
            batch_op.f('ck_allocation_proposal_status'), sa.text(_OLD)
        )
        batch_op.drop_column('rank')
        batch_op.drop_column('unit_no')
    op.drop_table('allocation_preference')

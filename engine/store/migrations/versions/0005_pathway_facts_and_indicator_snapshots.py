"""pathway facts (orienté par, exit category, housing changes, health events, follow-ups) and
indicator snapshots

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 17:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

HOUSING = "'street', 'emergency_shelter', 'hosted_third_party', 'integration_housing', 'housed'"
EXITS = "'emploi_durable', 'emploi_transition', 'sortie_positive', 'autre'"
REFERRED_BY = "'siao_115', 'maraude', 'france_travail', 'ccas', 'other'"
HEALTH = "'rights_opened', 'coverage_improved', 'care_pathway'"


def upgrade() -> None:
    with op.batch_alter_table('salarie', schema=None) as batch_op:
        batch_op.add_column(sa.Column('exit_category', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('referred_by', sa.String(length=20), nullable=True))
        batch_op.create_check_constraint(
            'referred_by', f"referred_by IS NULL OR referred_by IN ({REFERRED_BY})")
        batch_op.create_check_constraint(
            'exit_category',
            f"exit_category IS NULL OR (exit_date IS NOT NULL AND exit_category IN ({EXITS}))")
    op.create_table(
        'housing_change',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('salarie_id', sa.Integer(), nullable=False),
        sa.Column('on', sa.Date(), nullable=False),
        sa.Column('before', sa.String(length=24), nullable=False),
        sa.Column('after', sa.String(length=24), nullable=False),
        sa.Column('recorded_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"before IN ({HOUSING})", name=op.f('ck_housing_change_before')),
        sa.CheckConstraint(f"after IN ({HOUSING})", name=op.f('ck_housing_change_after')),
        sa.CheckConstraint('before != after', name=op.f('ck_housing_change_changes')),
        sa.ForeignKeyConstraint(['recorded_by'], ['staff_user.id'],
                                name=op.f('fk_housing_change_recorded_by_staff_user')),
        sa.ForeignKeyConstraint(['salarie_id'], ['salarie.id'], ondelete='CASCADE',
                                name=op.f('fk_housing_change_salarie_id_salarie')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_housing_change')),
    )
    with op.batch_alter_table('housing_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_housing_change_salarie_id'), ['salarie_id'], unique=False)
    op.create_table(
        'health_event',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('salarie_id', sa.Integer(), nullable=False),
        sa.Column('on', sa.Date(), nullable=False),
        sa.Column('kind', sa.String(length=24), nullable=False),
        sa.Column('recorded_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"kind IN ({HEALTH})", name=op.f('ck_health_event_kind')),
        sa.ForeignKeyConstraint(['recorded_by'], ['staff_user.id'],
                                name=op.f('fk_health_event_recorded_by_staff_user')),
        sa.ForeignKeyConstraint(['salarie_id'], ['salarie.id'], ondelete='CASCADE',
                                name=op.f('fk_health_event_salarie_id_salarie')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_health_event')),
        sa.UniqueConstraint('salarie_id', 'kind', 'on', name='uq_health_event_once_a_day'),
    )
    op.create_table(
        'follow_up',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('salarie_id', sa.Integer(), nullable=False),
        sa.Column('months', sa.Integer(), nullable=False),
        sa.Column('situation', sa.String(length=20), nullable=False),
        sa.Column('housed', sa.Boolean(), nullable=True),
        sa.Column('answered_on', sa.Date(), nullable=False),
        sa.Column('recorded_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('months IN (3, 6, 12)', name=op.f('ck_follow_up_months')),
        sa.CheckConstraint(f"situation IN ({EXITS})", name=op.f('ck_follow_up_situation')),
        sa.ForeignKeyConstraint(['recorded_by'], ['staff_user.id'],
                                name=op.f('fk_follow_up_recorded_by_staff_user')),
        sa.ForeignKeyConstraint(['salarie_id'], ['salarie.id'], ondelete='CASCADE',
                                name=op.f('fk_follow_up_salarie_id_salarie')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_follow_up')),
        sa.UniqueConstraint('salarie_id', 'months', name='uq_follow_up_salarie_months'),
    )
    op.create_table(
        'indicator_snapshot',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('code', sa.String(length=80), nullable=False),
        sa.Column('programme', sa.String(length=3), nullable=False),
        sa.Column('period', sa.String(length=10), nullable=False),
        sa.Column('territory', sa.String(length=80), nullable=False),
        sa.Column('value', sa.Double(), nullable=True),
        sa.Column('numerator', sa.BigInteger(), nullable=True),
        sa.Column('denominator', sa.BigInteger(), nullable=True),
        sa.Column('details', sa.JSON(), nullable=False),
        sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_indicator_snapshot')),
        sa.UniqueConstraint('code', 'programme', 'period', 'territory',
                            name='uq_indicator_snapshot_key'),
    )


def downgrade() -> None:
    op.drop_table('indicator_snapshot')
    op.drop_table('follow_up')
    op.drop_table('health_event')
    with op.batch_alter_table('housing_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_housing_change_salarie_id'))
    op.drop_table('housing_change')
    with op.batch_alter_table('salarie', schema=None) as batch_op:
        batch_op.drop_constraint('exit_category', type_='check')
        batch_op.drop_constraint('referred_by', type_='check')
        batch_op.drop_column('referred_by')
        batch_op.drop_column('exit_category')

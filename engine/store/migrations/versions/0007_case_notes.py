"""case notes: the notes thread on a person's case (CIP/ESP, chargé·es, coordination)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 10:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'case_note',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('salarie_id', sa.Integer(), nullable=False),
        sa.Column('referral_id', sa.Integer(), nullable=True),
        sa.Column('author_user_id', sa.Integer(), nullable=False),
        sa.Column('author_name', sa.String(length=200), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('reorientation_request', sa.Boolean(), nullable=False),
        sa.CheckConstraint('length(body) BETWEEN 1 AND 4000',
                           name=op.f('ck_case_note_body_length')),
        sa.ForeignKeyConstraint(['author_user_id'], ['staff_user.id'],
                                name=op.f('fk_case_note_author_user_id_staff_user')),
        sa.ForeignKeyConstraint(['referral_id'], ['referral.id'],
                                name=op.f('fk_case_note_referral_id_referral')),
        sa.ForeignKeyConstraint(['salarie_id'], ['salarie.id'], ondelete='CASCADE',
                                name=op.f('fk_case_note_salarie_id_salarie')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_case_note')),
    )
    with op.batch_alter_table('case_note', schema=None) as batch_op:
        batch_op.create_index('ix_case_note_salarie_at', ['salarie_id', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_case_note_referral_id'), ['referral_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('case_note', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_note_referral_id'))
        batch_op.drop_index('ix_case_note_salarie_at')
    op.drop_table('case_note')

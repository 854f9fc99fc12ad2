"""services of the national referential (data·inclusion): one imported_service row per
service, beside the partner and the offer it is routed as

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 19:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'imported_service',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('source', sa.String(length=80), nullable=False),
        sa.Column('structure_id', sa.String(length=255), nullable=False),
        sa.Column('structure_name', sa.String(length=200), nullable=True),
        sa.Column('partner_id', sa.Integer(), nullable=False),
        sa.Column('offer_id', sa.Integer(), nullable=False),
        sa.Column('date_maj', sa.Date(), nullable=False),
        sa.Column('score_qualite', sa.Double(), nullable=True),
        sa.Column('territories', sa.Text(), nullable=False),
        sa.Column('thematiques', sa.Text(), nullable=False),
        sa.Column('search_text', sa.Text(), nullable=False),
        sa.Column('details', sa.JSON(), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['offer_id'], ['offer.id'], name=op.f('fk_imported_service_offer_id_offer')
        ),
        sa.ForeignKeyConstraint(
            ['partner_id'], ['partner.id'], name=op.f('fk_imported_service_partner_id_partner')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_imported_service')),
        sa.UniqueConstraint('key', name=op.f('uq_imported_service_key')),
        sa.UniqueConstraint('offer_id', name=op.f('uq_imported_service_offer_id')),
        sa.UniqueConstraint('partner_id', name=op.f('uq_imported_service_partner_id')),
    )
    op.create_index(
        op.f('ix_imported_service_source'), 'imported_service', ['source'], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f('ix_imported_service_source'), table_name='imported_service')
    op.drop_table('imported_service')

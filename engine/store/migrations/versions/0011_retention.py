"""data lifetime: per-territory retention, notice and anonymisation marks on salarie

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 10:00:00

Columns are added in place (``ALTER TABLE ... ADD COLUMN`` with an inline CHECK on SQLite):
recreating ``salarie`` or ``territory`` the batch way would drop a table other tables refer to,
which SQLite turns into a DELETE (cascading to identities) when foreign keys are on.
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

TERRITORY_CHECK = "retention_months IS NULL OR retention_months BETWEEN 1 AND 36"
SALARIE_CHECK = (
    "anonymised_at IS NULL OR (external_ref IS NULL AND import_digest IS NULL "
    "AND vulnerability_flags = '' AND reference LIKE 'ANO-%')"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.execute(
            "ALTER TABLE territory ADD COLUMN retention_months INTEGER "
            f"CONSTRAINT ck_territory_retention_months CHECK ({TERRITORY_CHECK})"
        )
        op.execute("ALTER TABLE salarie ADD COLUMN retention_notice_on DATE")
        op.execute("ALTER TABLE salarie ADD COLUMN retention_due_on DATE")
        op.execute(
            "ALTER TABLE salarie ADD COLUMN anonymised_at DATETIME "
            f"CONSTRAINT ck_salarie_anonymised CHECK ({SALARIE_CHECK})"
        )
        return
    op.add_column('territory', sa.Column('retention_months', sa.Integer(), nullable=True))
    op.create_check_constraint(
        op.f('ck_territory_retention_months'), 'territory', TERRITORY_CHECK
    )
    op.add_column('salarie', sa.Column('retention_notice_on', sa.Date(), nullable=True))
    op.add_column('salarie', sa.Column('retention_due_on', sa.Date(), nullable=True))
    op.add_column(
        'salarie', sa.Column('anonymised_at', sa.DateTime(timezone=True), nullable=True)
    )
    op.create_check_constraint(op.f('ck_salarie_anonymised'), 'salarie', SALARIE_CHECK)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        for table, column in (
            ('salarie', 'anonymised_at'),
            ('salarie', 'retention_due_on'),
            ('salarie', 'retention_notice_on'),
            ('territory', 'retention_months'),
        ):
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        return
    op.drop_constraint(op.f('ck_salarie_anonymised'), 'salarie', type_='check')
    op.drop_column('salarie', 'anonymised_at')
    op.drop_column('salarie', 'retention_due_on')
    op.drop_column('salarie', 'retention_notice_on')
    op.drop_constraint(op.f('ck_territory_retention_months'), 'territory', type_='check')
    op.drop_column('territory', 'retention_months')

"""SQLAlchemy 2 typed models: one table per entity of DESIGN.md.

Why here and not spread out: Alembic autogenerates from one metadata, and the invariants
that matter are declared next to the columns as database constraints — one open referral per
frein, one active assignment per slot unit, one running allocation run, identity fields in
their own table, a version column for optimistic locking.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from engine.domain.lifecycle import OPEN_STATES, OUTCOMES, REFUSAL_REASONS, STATES
from engine.domain.vocabulary import (
    ALLOCATION_MECHANISMS,
    DOMAINS,
    EXIT_CATEGORIES,
    FOLLOWUP_MONTHS,
    FREIN_STATUSES,
    HEALTH_EVENT_KINDS,
    HOUSING,
    OUTBOX_STATUSES,
    OWNER_KINDS,
    PREFERENCE_MODES,
    PROGRAMMES,
    PROPOSAL_STATUSES,
    REFERRED_BY,
    ROLES,
    RUN_STATUSES,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


# Shared column presets (warehouse style).
intpk = Annotated[int, mapped_column(Integer, primary_key=True)]
bigpk = Annotated[
    int, mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
]
# No wall-clock defaults: every use case stamps its rows from the injected Clock, and a
# row inserted without a timestamp fails loudly (NOT NULL) instead of reading the wall.
created_at = Annotated[datetime, mapped_column(DateTime(timezone=True))]
tz_datetime = Annotated[datetime, mapped_column(DateTime(timezone=True))]
code_str = Annotated[str, mapped_column(String(80))]
short_str = Annotated[str, mapped_column(String(40))]
name_str = Annotated[str, mapped_column(String(200))]


# Ids are 32-bit integers on PostgreSQL: any id outside 1..MAX_ID cannot exist, and the web
# edge answers it as "not found" before a query could overflow.
MAX_ID = 2**31 - 1


def table_of(model: type[Base]) -> Table:
    """The Core table of a mapped class (typed: ``__table__`` is a mere FromClause)."""
    return cast(Table, model.__table__)


def _in(column: str, values: tuple[str, ...] | list[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Territory(Base):
    __tablename__ = "territory"
    __table_args__ = (
        CheckConstraint(
            "retention_months IS NULL OR retention_months BETWEEN 1 AND 36",
            name="retention_months",
        ),
    )
    id: Mapped[intpk]
    code: Mapped[code_str] = mapped_column(unique=True)
    name: Mapped[name_str]
    kind: Mapped[short_str]  # convergence | prefiguration
    departments: Mapped[str] = mapped_column(String(80), default="")
    # The territory's retention of case files in months (None: the national default).
    retention_months: Mapped[int | None] = mapped_column(Integer)


class Chantier(Base):
    __tablename__ = "chantier"
    __table_args__ = (CheckConstraint("carries_cvg OR carries_phc", name="carries_a_programme"),)
    id: Mapped[intpk]
    code: Mapped[code_str] = mapped_column(unique=True)
    name: Mapped[name_str]
    territory_id: Mapped[int | None] = mapped_column(ForeignKey("territory.id"), index=True)
    department: Mapped[str] = mapped_column(String(3))
    carries_cvg: Mapped[bool] = mapped_column(Boolean, default=False)
    carries_phc: Mapped[bool] = mapped_column(Boolean, default=False)

    territory: Mapped[Territory | None] = relationship()


ANONYMOUS_PREFIX = "ANO-"
ANONYMISED_SQL = (
    "anonymised_at IS NULL OR (external_ref IS NULL AND import_digest IS NULL "
    f"AND vulnerability_flags = '' AND reference LIKE '{ANONYMOUS_PREFIX}%')"
)


class Salarie(Base):
    """A salarié·e en insertion, pseudonymous: identity lives in ``salarie_identity``."""

    __tablename__ = "salarie"
    __table_args__ = (
        CheckConstraint(_in("programme", PROGRAMMES), name="programme"),
        CheckConstraint(_in("housing", HOUSING), name="housing"),
        CheckConstraint("street_months >= 0", name="street_months"),
        CheckConstraint("household_size >= 1", name="household_size"),
        CheckConstraint("minor_children >= 0", name="minor_children"),
        CheckConstraint("exit_date IS NULL OR exit_date >= entry_date", name="exit_after_entry"),
        CheckConstraint(
            "referred_by IS NULL OR " + _in("referred_by", REFERRED_BY), name="referred_by"
        ),
        CheckConstraint(
            "exit_category IS NULL OR (exit_date IS NOT NULL AND "
            + _in("exit_category", EXIT_CATEGORIES)
            + ")",
            name="exit_category",
        ),
        # An anonymised file keeps nothing that links it back to the person.
        CheckConstraint(ANONYMISED_SQL, name="anonymised"),
    )
    id: Mapped[intpk]
    reference: Mapped[str] = mapped_column(String(20), unique=True)  # SAL-XXXXXX
    external_ref: Mapped[str | None] = mapped_column(String(80), unique=True)  # chantier's own id
    chantier_id: Mapped[int] = mapped_column(ForeignKey("chantier.id"), index=True)
    programme: Mapped[str] = mapped_column(String(3))
    entry_date: Mapped[date] = mapped_column(Date)
    exit_date: Mapped[date | None] = mapped_column(Date)
    # IAE exit category ("sorties dynamiques"), recorded with the exit.
    exit_category: Mapped[str | None] = mapped_column(String(20))
    # How the person came to the programme ("orienté par").
    referred_by: Mapped[str | None] = mapped_column(String(20))
    programme_end: Mapped[date | None] = mapped_column(Date)
    housing: Mapped[str] = mapped_column(String(24))
    street_months: Mapped[int] = mapped_column(Integer, default=0)
    has_resources: Mapped[bool] = mapped_column(Boolean, default=True)
    household_size: Mapped[int] = mapped_column(Integer, default=1)
    minor_children: Mapped[int] = mapped_column(Integer, default=0)
    rqth: Mapped[bool] = mapped_column(Boolean, default=False)
    vulnerability_flags: Mapped[str] = mapped_column(String(120), default="")
    health_urgency: Mapped[bool] = mapped_column(Boolean, default=False)
    import_digest: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[created_at]
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Data lifetime (engine.retention): the day the CIP/ESP were told the file would be
    # anonymised, the day announced, and when it was.
    retention_notice_on: Mapped[date | None] = mapped_column(Date)
    retention_due_on: Mapped[date | None] = mapped_column(Date)
    anonymised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    chantier: Mapped[Chantier] = relationship()
    __mapper_args__ = {"version_id_col": version}


class SalarieIdentity(Base):
    """Names and contact details: readable only by roles that need them, every read logged."""

    __tablename__ = "salarie_identity"
    salarie_id: Mapped[int] = mapped_column(
        ForeignKey("salarie.id", ondelete="CASCADE"), primary_key=True
    )
    last_name: Mapped[name_str]
    first_name: Mapped[name_str]
    birth_date: Mapped[date | None] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(String(40))
    email: Mapped[str | None] = mapped_column(String(200))


class HousingChange(Base):
    """A change of the person's housing situation, dated: makes "accès au logement" and
    "mise à l'abri" measurable (the situation at entry is the first change's ``before``)."""

    __tablename__ = "housing_change"
    __table_args__ = (
        CheckConstraint(_in("before", HOUSING), name="before"),
        CheckConstraint(_in("after", HOUSING), name="after"),
        CheckConstraint("before != after", name="changes"),
    )
    id: Mapped[intpk]
    salarie_id: Mapped[int] = mapped_column(
        ForeignKey("salarie.id", ondelete="CASCADE"), index=True
    )
    on: Mapped[date] = mapped_column(Date)
    before: Mapped[str] = mapped_column(String(24))
    after: Mapped[str] = mapped_column(String(24))
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    created_at: Mapped[created_at]


class HealthEvent(Base):
    """A health-rights event of the pathway: rights opened, coverage improved, care pathway."""

    __tablename__ = "health_event"
    __table_args__ = (
        CheckConstraint(_in("kind", HEALTH_EVENT_KINDS), name="kind"),
        UniqueConstraint("salarie_id", "kind", "on", name="uq_health_event_once_a_day"),
    )
    id: Mapped[intpk]
    salarie_id: Mapped[int] = mapped_column(ForeignKey("salarie.id", ondelete="CASCADE"))
    on: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(24))
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    created_at: Mapped[created_at]


class FollowUp(Base):
    """The CVG follow-up 3, 6 and 12 months after exit: the person's situation then."""

    __tablename__ = "follow_up"
    __table_args__ = (
        CheckConstraint(f"months IN ({', '.join(map(str, FOLLOWUP_MONTHS))})", name="months"),
        CheckConstraint(_in("situation", EXIT_CATEGORIES), name="situation"),
        UniqueConstraint("salarie_id", "months", name="uq_follow_up_salarie_months"),
    )
    id: Mapped[intpk]
    salarie_id: Mapped[int] = mapped_column(ForeignKey("salarie.id", ondelete="CASCADE"))
    months: Mapped[int] = mapped_column(Integer)
    situation: Mapped[str] = mapped_column(String(20))
    housed: Mapped[bool | None] = mapped_column(Boolean)
    answered_on: Mapped[date] = mapped_column(Date)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    created_at: Mapped[created_at]


class IndicatorSnapshot(Base):
    """One indicator's figure for a period, territory and programme: counts only, so the
    figures survive anonymisation and a past month never changes silently."""

    __tablename__ = "indicator_snapshot"
    __table_args__ = (
        UniqueConstraint(
            "code", "programme", "period", "territory", name="uq_indicator_snapshot_key"
        ),
    )
    id: Mapped[bigpk]
    code: Mapped[str] = mapped_column(String(80))
    programme: Mapped[str] = mapped_column(String(3), default="")  # "" = both programmes
    period: Mapped[str] = mapped_column(String(10))  # "2024" or "2024-03"
    territory: Mapped[str] = mapped_column(String(80), default="")  # "" = the whole network
    value: Mapped[float | None]
    numerator: Mapped[int | None] = mapped_column(BigInteger)
    denominator: Mapped[int | None] = mapped_column(BigInteger)
    # Comparisons: the ratio and each group's counts; a figure not computable: why (no person).
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    computed_at: Mapped[created_at]


class Frein(Base):
    __tablename__ = "frein"
    __table_args__ = (
        CheckConstraint(_in("domain", DOMAINS), name="domain"),
        CheckConstraint(_in("status", FREIN_STATUSES), name="status"),
        UniqueConstraint("salarie_id", "thematique", name="uq_frein_salarie_thematique"),
        Index("ix_frein_status_id", "status", "id"),
    )
    id: Mapped[intpk]
    salarie_id: Mapped[int] = mapped_column(ForeignKey("salarie.id", ondelete="CASCADE"))
    thematique: Mapped[str] = mapped_column(String(120))
    domain: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(10), default="open")
    identified_at: Mapped[date] = mapped_column(Date)
    created_at: Mapped[created_at]


class Partner(Base):
    __tablename__ = "partner"
    id: Mapped[intpk]
    code: Mapped[code_str] = mapped_column(unique=True)
    name: Mapped[name_str]
    domain: Mapped[str] = mapped_column(String(12))
    national: Mapped[bool] = mapped_column(Boolean, default=False)
    coverage: Mapped[list[Any] | None] = mapped_column(JSON)  # None: national coverage
    contact_email: Mapped[str | None] = mapped_column(String(200))
    assumed: Mapped[bool] = mapped_column(Boolean, default=False)


class Offer(Base):
    __tablename__ = "offer"
    __table_args__ = (
        CheckConstraint(_in("allocation_mechanism", ALLOCATION_MECHANISMS), name="mechanism"),
    )
    id: Mapped[intpk]
    partner_id: Mapped[int] = mapped_column(ForeignKey("partner.id"), index=True)
    code: Mapped[code_str] = mapped_column(unique=True)
    name: Mapped[name_str]
    thematiques: Mapped[list[Any]] = mapped_column(JSON)
    slot_based: Mapped[bool] = mapped_column(Boolean, default=False)
    accepts_direct: Mapped[bool] = mapped_column(Boolean, default=False)
    rules: Mapped[list[Any]] = mapped_column(JSON, default=list)
    unit_kind: Mapped[str | None] = mapped_column(String(20))
    # Codes of sibling offers a person cannot hold at the same time ("IML excludes ALT").
    excludes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # How the pools of this offer are allocated: "optimal" (the grid's optimum, stated
    # preferences as eligibility) or "stable" (deferred acceptance, people proposing).
    allocation_mechanism: Mapped[str] = mapped_column(String(12), default="optimal")

    partner: Mapped[Partner] = relationship()


class ImportedService(Base):
    """A service of the national referential (data·inclusion), imported as a partner with one
    offer (``engine.directory.services_import``). The file's fields live here and are replaced
    by each import; what the network adds — eligibility rules, counted pools — lives on the
    offer and its pools and is never touched by an import. A service absent from a later file
    is withdrawn (``withdrawn_at``), never deleted: referrals may point to its offer."""

    __tablename__ = "imported_service"
    id: Mapped[intpk]
    key: Mapped[str] = mapped_column(String(255), unique=True)  # "source--id", the upsert key
    source: Mapped[str] = mapped_column(String(80), index=True)  # the producer (dora, …)
    structure_id: Mapped[str] = mapped_column(String(255))
    structure_name: Mapped[str | None] = mapped_column(String(200))
    partner_id: Mapped[int] = mapped_column(ForeignKey("partner.id"), unique=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offer.id"), unique=True)
    date_maj: Mapped[date] = mapped_column(Date)
    score_qualite: Mapped[float | None]
    # Territory codes and thématiques as "|a|b|" ("*": national), searched with LIKE.
    territories: Mapped[str] = mapped_column(Text)
    thematiques: Mapped[str] = mapped_column(Text)
    search_text: Mapped[str] = mapped_column(Text)  # names, lower case without accents
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    digest: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[created_at]
    updated_at: Mapped[tz_datetime]
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StaffUser(Base):
    __tablename__ = "staff_user"
    __table_args__ = (
        CheckConstraint(_in("role", ROLES), name="role"),
        CheckConstraint(
            "role != 'officer' OR (territory_id IS NOT NULL AND domain IS NOT NULL)",
            name="officer_scope",
        ),
        CheckConstraint("role != 'cip' OR chantier_id IS NOT NULL", name="cip_chantier"),
        CheckConstraint(
            "role != 'partner_contact' OR partner_id IS NOT NULL", name="partner_contact_partner"
        ),
        CheckConstraint("caseload_cap IS NULL OR caseload_cap >= 0", name="caseload_cap"),
    )
    id: Mapped[intpk]
    email: Mapped[str] = mapped_column(String(200), unique=True)
    display_name: Mapped[name_str]
    role: Mapped[str] = mapped_column(String(20))
    territory_id: Mapped[int | None] = mapped_column(ForeignKey("territory.id"), index=True)
    domain: Mapped[str | None] = mapped_column(String(12))
    chantier_id: Mapped[int | None] = mapped_column(ForeignKey("chantier.id"))
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partner.id"))
    caseload_cap: Mapped[int | None] = mapped_column(Integer)
    national_queue: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[created_at]

    territory: Mapped[Territory | None] = relationship()


class SlotPool(Base):
    """Identical slots of one offer, for a territory scope and period, with a capacity."""

    __tablename__ = "slot_pool"
    __table_args__ = (
        CheckConstraint("capacity >= 0", name="capacity"),
        CheckConstraint("shortlist_size BETWEEN 1 AND 20", name="shortlist_size"),
    )
    id: Mapped[intpk]
    code: Mapped[code_str] = mapped_column(unique=True)
    offer_id: Mapped[int] = mapped_column(ForeignKey("offer.id"), index=True)
    name: Mapped[name_str]
    scope: Mapped[list[Any] | None] = mapped_column(JSON)  # territory codes; None = national
    territory_id: Mapped[int | None] = mapped_column(ForeignKey("territory.id"))  # home, if one
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    capacity: Mapped[int] = mapped_column(Integer)
    unit_kind: Mapped[str] = mapped_column(String(20))
    # Given through a commission (CALEOL): each unit gets a ranked shortlist rang 1..k.
    commission: Mapped[bool] = mapped_column(Boolean, default=False)
    shortlist_size: Mapped[int] = mapped_column(Integer, default=3)

    offer: Mapped[Offer] = relationship()


class SlotUnit(Base):
    """One countable unit of a pool (a flat, a measure, a bed): the thing never given twice."""

    __tablename__ = "slot_unit"
    __table_args__ = (UniqueConstraint("pool_id", "unit_no", name="uq_slot_unit_pool_unit"),)
    id: Mapped[intpk]
    pool_id: Mapped[int] = mapped_column(ForeignKey("slot_pool.id", ondelete="CASCADE"))
    unit_no: Mapped[int] = mapped_column(Integer)


class SlotAssignment(Base):
    __tablename__ = "slot_assignment"
    __table_args__ = (
        Index(
            "uq_slot_assignment_active_unit",
            "unit_id",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )
    id: Mapped[intpk]
    unit_id: Mapped[int] = mapped_column(ForeignKey("slot_unit.id"))
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral.id"), index=True)
    proposal_id: Mapped[int | None] = mapped_column(ForeignKey("allocation_proposal.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[created_at]
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


_OPEN_STATES_SQL = _in("state", OPEN_STATES)


class Referral(Base):
    """An orientation: one frein of one person, handled by an owner, maybe towards a partner."""

    __tablename__ = "referral"
    __table_args__ = (
        CheckConstraint(_in("state", STATES), name="state"),
        CheckConstraint(_in("owner_kind", OWNER_KINDS), name="owner_kind"),
        CheckConstraint("state != 'closed' OR outcome IS NOT NULL", name="closed_has_outcome"),
        CheckConstraint("outcome IS NULL OR " + _in("outcome", OUTCOMES), name="outcome"),
        CheckConstraint(
            "state != 'refused' OR refusal_reason IS NOT NULL", name="refused_has_reason"
        ),
        CheckConstraint(
            "refusal_reason IS NULL OR " + _in("refusal_reason", REFUSAL_REASONS),
            name="refusal_reason",
        ),
        CheckConstraint(
            "refusal_reason IS NULL OR refusal_reason != 'other' OR refusal_note IS NOT NULL",
            name="other_reason_has_note",
        ),
        Index(
            "uq_referral_open_frein",
            "frein_id",
            unique=True,
            sqlite_where=text(_OPEN_STATES_SQL),
            postgresql_where=text(_OPEN_STATES_SQL),
        ),
        # A scope's rows by state in priority order, and — with territory, domain and due_at
        # in the index — the queue's totals by state and overdue read from the index alone.
        Index(
            "ix_referral_owner_count",
            "owner_user_id",
            "state",
            "priority",
            "territory_id",
            "domain",
            "due_at",
        ),
        Index("ix_referral_scope_count", "territory_id", "domain", "state", "priority", "due_at"),
        Index("ix_referral_chantier_count", "chantier_id", "state", "due_at"),
        # A partner's orientations (its queue, its home page) without reading the network's.
        Index("ix_referral_offer_state", "offer_id", "state"),
        Index("ix_referral_state_priority", "state", "priority"),
        Index(
            "ix_referral_open_priority",
            "priority",
            "id",
            sqlite_where=text(_OPEN_STATES_SQL),
            postgresql_where=text(_OPEN_STATES_SQL),
        ),
        Index(
            "ix_referral_open_due",
            "due_at",
            "id",
            sqlite_where=text(_OPEN_STATES_SQL),
            postgresql_where=text(_OPEN_STATES_SQL),
        ),
        # Who waits for which pool (the allocation's candidates, the pools' waiting counts):
        # a few hundred rows among a million, whatever the planner's statistics say.
        Index(
            "ix_referral_waiting_pool",
            "pool_id",
            sqlite_where=text("state = 'waitlisted'"),
            postgresql_where=text("state = 'waitlisted'"),
        ),
        Index(
            "ix_referral_open_age",
            "created_at",
            "id",
            sqlite_where=text(_OPEN_STATES_SQL),
            postgresql_where=text(_OPEN_STATES_SQL),
        ),
        # A coordinator's page in deadline order (queue._due_branches).
        Index(
            "ix_referral_open_territory_due",
            "territory_id",
            "due_at",
            "id",
            sqlite_where=text(_OPEN_STATES_SQL),
            postgresql_where=text(_OPEN_STATES_SQL),
        ),
        # The queue's page in priority order, one range per branch of a scope (queue.py).
        Index(
            "ix_referral_open_scope_priority",
            "territory_id",
            "domain",
            "priority",
            "id",
            sqlite_where=text(_OPEN_STATES_SQL),
            postgresql_where=text(_OPEN_STATES_SQL),
        ),
        Index(
            "ix_referral_open_owner_priority",
            "owner_user_id",
            "priority",
            "id",
            sqlite_where=text(_OPEN_STATES_SQL),
            postgresql_where=text(_OPEN_STATES_SQL),
        ),
        Index(
            "ix_referral_open_chantier_priority",
            "chantier_id",
            "priority",
            "id",
            sqlite_where=text(_OPEN_STATES_SQL),
            postgresql_where=text(_OPEN_STATES_SQL),
        ),
        Index(
            "ix_referral_open_chantier_due",
            "chantier_id",
            "due_at",
            "id",
            sqlite_where=text(_OPEN_STATES_SQL),
            postgresql_where=text(_OPEN_STATES_SQL),
        ),
    )
    id: Mapped[intpk]
    # Indexed for the intake's "never routed" anti-join (the partial unique index covers only
    # open referrals): without it each incremental route scanned every referral per frein.
    frein_id: Mapped[int] = mapped_column(ForeignKey("frein.id"), index=True)
    salarie_id: Mapped[int] = mapped_column(ForeignKey("salarie.id"), index=True)
    chantier_id: Mapped[int] = mapped_column(
        ForeignKey("chantier.id")
    )  # ix_referral_chantier_count
    territory_id: Mapped[int | None] = mapped_column(ForeignKey("territory.id"))
    programme: Mapped[str] = mapped_column(String(3))
    domain: Mapped[str] = mapped_column(String(12))
    thematique: Mapped[str] = mapped_column(String(120))
    state: Mapped[str] = mapped_column(String(16), default="new")
    owner_kind: Mapped[str] = mapped_column(String(12))
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    offer_id: Mapped[int | None] = mapped_column(ForeignKey("offer.id"))
    pool_id: Mapped[int | None] = mapped_column(ForeignKey("slot_pool.id"))
    units_needed: Mapped[int] = mapped_column(Integer, default=1)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    priority_breakdown: Mapped[list[Any]] = mapped_column(JSON, default=list)
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    explanation: Mapped[str] = mapped_column(Text, default="")
    suggestions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    outcome: Mapped[str | None] = mapped_column(String(24))
    refusal_reason: Mapped[str | None] = mapped_column(String(24))
    refusal_note: Mapped[str | None] = mapped_column(Text)
    transferred_from_id: Mapped[int | None] = mapped_column(ForeignKey("referral.id"))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[created_at]
    state_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)

    offer: Mapped[Offer | None] = relationship(foreign_keys=[offer_id])
    __mapper_args__ = {"version_id_col": version}


class ReferralEvent(Base):
    """Every transition: from, to, actor, at, reason, note."""

    __tablename__ = "referral_event"
    # Recent events of one kind (the partners' answers of the last 90 days on the dashboards).
    __table_args__ = (Index("ix_referral_event_action_at", "action", "at"),)
    id: Mapped[bigpk]
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(24))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    actor_label: Mapped[str] = mapped_column(String(80), default="")
    at: Mapped[created_at]
    reason: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str | None] = mapped_column(Text)


class AllocationRun(Base):
    __tablename__ = "allocation_run"
    __table_args__ = (
        CheckConstraint(_in("status", RUN_STATUSES), name="status"),
        # One allocation run at a time: at most one row may be 'running'.
        Index(
            "uq_allocation_run_one_running",
            "running_lock",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
    )
    id: Mapped[intpk]
    running_lock: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[created_at]
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(12), default="running")
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    territory_code: Mapped[str | None] = mapped_column(String(80))
    solver: Mapped[str | None] = mapped_column(String(20))
    objective: Mapped[int | None] = mapped_column(BigInteger)
    bound: Mapped[int | None] = mapped_column(BigInteger)
    time_s: Mapped[float | None]
    inputs_digest: Mapped[str | None] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    explanations: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))


class AllocationProposal(Base):
    __tablename__ = "allocation_proposal"
    __table_args__ = (
        CheckConstraint(_in("status", PROPOSAL_STATUSES), name="status"),
        Index(
            "uq_allocation_proposal_open_referral",
            "referral_id",
            unique=True,
            sqlite_where=text("status = 'proposed'"),
            postgresql_where=text("status = 'proposed'"),
        ),
        # A person waits on one commission shortlist at a time.
        Index(
            "uq_allocation_proposal_shortlisted_referral",
            "referral_id",
            unique=True,
            sqlite_where=text("status = 'shortlisted'"),
            postgresql_where=text("status = 'shortlisted'"),
        ),
        # One candidate per rank of a unit's shortlist ...
        Index(
            "uq_allocation_proposal_unit_rank",
            "run_id",
            "pool_id",
            "unit_no",
            "rank",
            unique=True,
            sqlite_where=text("rank IS NOT NULL"),
            postgresql_where=text("rank IS NOT NULL"),
        ),
        # ... and a unit offered to one rank at a time.
        Index(
            "uq_allocation_proposal_unit_offered",
            "run_id",
            "pool_id",
            "unit_no",
            unique=True,
            sqlite_where=text("rank IS NOT NULL AND status = 'proposed'"),
            postgresql_where=text("rank IS NOT NULL AND status = 'proposed'"),
        ),
        CheckConstraint("(rank IS NULL) = (unit_no IS NULL)", name="rank_has_unit"),
        CheckConstraint("rank IS NULL OR rank >= 1", name="rank"),
    )
    id: Mapped[intpk]
    run_id: Mapped[int] = mapped_column(ForeignKey("allocation_run.id"), index=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral.id"), index=True)
    pool_id: Mapped[int] = mapped_column(ForeignKey("slot_pool.id"), index=True)
    units: Mapped[int] = mapped_column(Integer, default=1)
    weight: Mapped[int] = mapped_column(BigInteger)
    priority: Mapped[int] = mapped_column(Integer)
    explanation: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="proposed")
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decline_reason: Mapped[str | None] = mapped_column(Text)
    # Commission pools: the unit of the run's shortlist (1..capacity) and the rank (1..k).
    unit_no: Mapped[int | None] = mapped_column(Integer)
    rank: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class AllocationPreference(Base):
    """What a waitlisted person accepts, in order, recorded by their CIP/ESP: pools or
    territories. No row means "any" (every pool the grid makes them eligible for)."""

    __tablename__ = "allocation_preference"
    id: Mapped[intpk]
    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referral.id", ondelete="CASCADE"), unique=True
    )
    # [{"pool": id} | {"territory": code}, ...], most preferred first; never empty.
    choices: Mapped[list[Any]] = mapped_column(JSON)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    recorded_at: Mapped[tz_datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


# "cancelled": a partner mail whose orientation ended before it was sent (or digested).
OUTBOX_ROW_STATUSES = (*OUTBOX_STATUSES, "cancelled")


class OutboxMessage(Base):
    """A message to send, written in the same transaction as the change that causes it.

    ``referral_id`` names the orientation a partner mail is about, so the relay and the
    partner digest can cancel it when the orientation no longer awaits the partner."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        CheckConstraint(_in("status", OUTBOX_ROW_STATUSES), name="status"),
        CheckConstraint(_in("delivery", ("immediate", "digest")), name="delivery"),
        Index("ix_outbox_due", "status", "delivery", "due_at"),
    )
    id: Mapped[bigpk]
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    recipient_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), index=True)
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referral.id"), index=True)
    to_address: Mapped[str] = mapped_column(String(200))
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    delivery: Mapped[str] = mapped_column(String(10), default="immediate")  # or "digest"
    status: Mapped[str] = mapped_column(String(10), default="pending")
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    leased_by: Mapped[str | None] = mapped_column(String(80))
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[created_at]


class NotificationPreference(Base):
    __tablename__ = "notification_preference"
    __table_args__ = (
        UniqueConstraint("user_id", "kind", name="uq_notification_preference_user_kind"),
        CheckConstraint(_in("mode", PREFERENCE_MODES), name="mode"),
    )
    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    mode: Mapped[str] = mapped_column(String(10))


class AccessLog(Base):
    """Who read which case file, when and why."""

    __tablename__ = "access_log"
    id: Mapped[bigpk]
    # None for a partner reading through its signed link (no account): ``reader`` says who.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), index=True)
    reader: Mapped[str] = mapped_column(String(80), default="")
    salarie_id: Mapped[int] = mapped_column(ForeignKey("salarie.id"), index=True)
    at: Mapped[created_at]
    purpose: Mapped[str] = mapped_column(String(80))
    with_identity: Mapped[bool] = mapped_column(Boolean, default=False)


class CaseNote(Base):
    """A free-text note on a person's case, written by the chantier's CIP/ESP or by the
    chargé·es and coordination who read the orientation it was written on.

    Never mailed, never in the outbox, never logged: the body stays in this table. A
    ``reorientation_request`` is the CIP/ESP asking the orientation's owner for another way
    (shown prominently on the case page, not a state change)."""

    __tablename__ = "case_note"
    __table_args__ = (
        CheckConstraint("length(body) BETWEEN 1 AND 4000", name="body_length"),
        Index("ix_case_note_salarie_at", "salarie_id", "at"),
    )
    id: Mapped[bigpk]
    salarie_id: Mapped[int] = mapped_column(ForeignKey("salarie.id", ondelete="CASCADE"))
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referral.id"), index=True)
    author_user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    author_name: Mapped[name_str]  # the author's display name when they wrote it
    at: Mapped[created_at]
    body: Mapped[str] = mapped_column(Text)
    reorientation_request: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditLog(Base):
    """An audit row for every write that is not a referral transition."""

    __tablename__ = "audit_log"
    id: Mapped[bigpk]
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    actor_label: Mapped[str] = mapped_column(String(80), default="")
    action: Mapped[str] = mapped_column(String(60))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(80))
    at: Mapped[created_at]
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class LoginAttempt(Base):
    __tablename__ = "login_attempt"
    __table_args__ = (
        Index("ix_login_attempt_email_at", "email", "at"),
        Index("ix_login_attempt_ip_at", "ip", "at"),
    )
    id: Mapped[bigpk]
    email: Mapped[str] = mapped_column(String(200))
    ip: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[created_at]
    success: Mapped[bool] = mapped_column(Boolean, default=False)


class WebSession(Base):
    """A browser session: the cookie holds a random token, the table its hash and expiry."""

    __tablename__ = "web_session"
    id: Mapped[intpk]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("staff_user.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[created_at]
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ip: Mapped[str] = mapped_column(String(64), default="")

"""The plain data the indicators read: people with their pathway facts, referrals, pools.

Why records and not ORM rows: reporting is pure, like matching; the engine builds these
snapshots (counts and dates only, no identity) and the same functions serve the CLI, the
pages, the exports and the snapshot flow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

# How the person came to the programme ("orienté par").
REFERRED_BY: dict[str, str] = {
    "siao_115": "SIAO / 115",
    "maraude": "Maraude",
    "france_travail": "France Travail",
    "ccas": "CCAS",
    "other": "Autre",
}
# Emergency social services, as the 2024 report counts them ("structures de l'urgence sociale").
EMERGENCY_SOCIAL_SERVICES = frozenset({"siao_115", "maraude"})

# Exit categories of the IAE "sorties dynamiques" (DGEFP / ASP definitions, docs/impact.md).
EXIT_CATEGORIES: dict[str, str] = {
    "emploi_durable": "Emploi durable",
    "emploi_transition": "Emploi de transition",
    "sortie_positive": "Sortie positive (formation, autre SIAE…)",
    "autre": "Autre sortie",
}
EMPLOYMENT_EXITS = frozenset({"emploi_durable", "emploi_transition"})
DYNAMIC_EXITS = frozenset({"emploi_durable", "emploi_transition", "sortie_positive"})

# Health-rights events recorded during the pathway.
HEALTH_EVENTS: dict[str, str] = {
    "rights_opened": "Droits santé ouverts",
    "coverage_improved": "Couverture santé améliorée",
    "care_pathway": "Entrée dans un parcours de soins",
}

# Housing situations (the same keys as matching.facts.HOUSING_SITUATIONS).
STREET = "street"
HOSTED = frozenset({"emergency_shelter", "hosted_third_party", "integration_housing"})
SHELTERED_OR_HOUSED = frozenset(
    {"emergency_shelter", "hosted_third_party", "integration_housing", "housed"}
)
HOUSED = "housed"


@dataclass(frozen=True, slots=True)
class HousingChange:
    on: date
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class HealthEvent:
    on: date
    kind: str  # a key of HEALTH_EVENTS


@dataclass(frozen=True, slots=True)
class Person:
    """One salarié·e, pseudonymous: what the indicators need and nothing else."""

    id: int
    programme: str  # "cvg" | "phc"
    territory: str | None  # territory code; None outside the Convergence territories
    chantier: str  # chantier code
    entry_date: date
    exit_date: date | None = None
    exit_category: str | None = None  # a key of EXIT_CATEGORIES, set with exit_date
    referred_by: str | None = None  # a key of REFERRED_BY
    housing_at_entry: str = "housed"
    street_months_at_entry: int = 0
    resources_at_entry: bool = True
    freins: int = 0  # freins identified for the person
    housing_changes: tuple[HousingChange, ...] = ()
    health_events: tuple[HealthEvent, ...] = ()
    # Domains whose chargé·e de partenariats worked on one of the person's freins (a referral
    # of that domain taken in hand by an officer), with the first day they did.
    mobilised: dict[str, date] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Referral:
    """One orientation, with the instants of its milestones (None: not reached)."""

    id: int
    person_id: int
    programme: str
    territory: str | None
    chantier: str
    domain: str
    state: str
    created_at: datetime
    owner_kind: str = "officer"
    outcome: str | None = None
    refusal_reason: str | None = None
    partner: str | None = None  # partner code, when sent to one
    offer: str | None = None  # offer code
    pool: str | None = None  # slot pool code, for a counted offer
    triaged_at: datetime | None = None  # first left "new"
    referred_at: datetime | None = None  # sent to the partner
    answered_at: datetime | None = None  # partner accepted or refused
    accepted: bool | None = None  # partner's answer (None: no answer yet)
    waitlisted_at: datetime | None = None
    placed_at: datetime | None = None  # slot proposal validated
    ended_at: datetime | None = None  # closed, refused, expired, cancelled or transferred
    due_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PoolRecord:
    """A counted slot pool and its use over its period."""

    code: str
    name: str
    territory: str | None
    unit_kind: str
    period_start: date
    period_end: date
    capacity: int
    held: int  # units given (validated) and not released
    proposed: int  # units in open proposals
    waiting: int  # referrals waitlisted on its offer


@dataclass(frozen=True, slots=True)
class Period:
    """A closed interval of days; a year, a quarter or a month."""

    start: date
    end: date
    label: str

    @classmethod
    def year(cls, y: int) -> Period:
        return cls(date(y, 1, 1), date(y, 12, 31), str(y))

    @classmethod
    def month(cls, y: int, m: int) -> Period:
        nxt = date(y + (m == 12), m % 12 + 1, 1)
        return cls(date(y, m, 1), date.fromordinal(nxt.toordinal() - 1), f"{y}-{m:02d}")

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

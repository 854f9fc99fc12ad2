"""The facts about one person that the grid, the eligibility rules and routing read.

Why: matching is pure; the engine builds these snapshots from the database and hands them
over, so every rule is testable without a database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

HOUSING_SITUATIONS: dict[str, str] = {
    "street": "à la rue",
    "emergency_shelter": "en hébergement d'urgence",
    "hosted_third_party": "hébergé·e par un tiers",
    "integration_housing": "en logement d'insertion",
    "housed": "logé·e",
}

VULNERABILITY_FLAGS: dict[str, str] = {
    "violence": "violences",
    "pregnancy": "grossesse",
    "leaving_hospital": "sortie d'hospitalisation",
}


@dataclass(frozen=True, slots=True)
class PersonFacts:
    person_id: int
    programme: str  # "cvg" | "phc"
    territory: str | None  # None: chantier outside the Convergence territories
    housing: str = "housed"
    street_months: int = 0
    has_resources: bool = True
    household_size: int = 1
    minor_children: int = 0
    rqth: bool = False
    vulnerability_flags: frozenset[str] = field(default_factory=frozenset)
    health_urgency: bool = False
    open_freins: int = 1
    programme_end: date | None = None
    age: int | None = None

    @property
    def vulnerability(self) -> bool:
        return bool(self.vulnerability_flags)

    def get(self, name: str) -> object:
        """Field lookup used by eligibility rules."""
        return getattr(self, name)

"""The closed vocabularies of the engine's data: each list of codes has one owner.

Why one module: a code list (a housing situation, a role, a programme) was declared in the
models, the seeder, the pages and the pure packages. The pure packages own the vocabularies
they reason on (``partners.taxonomy`` the domains, ``partners.catalogue`` the programmes,
``matching.facts`` the housing situations); the engine's own lists live here, and the
models' CHECK constraints, the seeder and the labels (``engine.domain.labels``) read them.
"""

from __future__ import annotations

from matching.facts import HOUSING_SITUATIONS
from partners.catalogue import PROGRAMMES
from partners.taxonomy import DOMAINS

HOUSING: tuple[str, ...] = tuple(HOUSING_SITUATIONS)
ROLES = ("national_admin", "coordinator", "officer", "cip", "partner_contact")
OWNER_KINDS = ("officer", "coordinator", "national", "partner")
FREIN_STATUSES = ("open", "lifted", "dropped")
OUTBOX_STATUSES = ("pending", "sent", "parked", "digested", "skipped")
PREFERENCE_MODES = ("immediate", "digest", "off")
PROPOSAL_STATUSES = ("proposed", "validated", "declined", "expired")
RUN_STATUSES = ("running", "optimal", "feasible", "infeasible", "unknown", "failed")

__all__ = [
    "DOMAINS",
    "FREIN_STATUSES",
    "HOUSING",
    "OUTBOX_STATUSES",
    "OWNER_KINDS",
    "PREFERENCE_MODES",
    "PROGRAMMES",
    "PROPOSAL_STATUSES",
    "ROLES",
    "RUN_STATUSES",
]

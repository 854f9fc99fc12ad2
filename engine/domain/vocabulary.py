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
from reporting.records import EXIT_CATEGORIES as _EXITS
from reporting.records import HEALTH_EVENTS
from reporting.records import REFERRED_BY as _REFERRED_BY

HOUSING: tuple[str, ...] = tuple(HOUSING_SITUATIONS)
ROLES = ("national_admin", "coordinator", "officer", "cip", "partner_contact")
OWNER_KINDS = ("officer", "coordinator", "national", "partner")
FREIN_STATUSES = ("open", "lifted", "dropped")
OUTBOX_STATUSES = ("pending", "sent", "parked", "digested", "skipped")
PREFERENCE_MODES = ("immediate", "digest", "off")
# "shortlisted": rang 2..k of a commission's shortlist, not yet offered (the person is told
# nothing); "withdrawn": a shortlisted rank the commission never reached (the unit went to
# an earlier rank, or the person left the waitlist another way).
PROPOSAL_STATUSES = ("proposed", "validated", "declined", "expired", "shortlisted", "withdrawn")
# How a family of pools (the pools of one offer) is allocated, chosen by the national team.
ALLOCATION_MECHANISMS = ("optimal", "stable")
RUN_STATUSES = ("running", "optimal", "feasible", "infeasible", "unknown", "failed")
# Pathway facts: the reporting package owns these vocabularies (its indicators reason on them).
EXIT_CATEGORIES: tuple[str, ...] = tuple(_EXITS)
REFERRED_BY: tuple[str, ...] = tuple(_REFERRED_BY)
HEALTH_EVENT_KINDS: tuple[str, ...] = tuple(HEALTH_EVENTS)
FOLLOWUP_MONTHS: tuple[int, ...] = (3, 6, 12)

__all__ = [
    "ALLOCATION_MECHANISMS",
    "DOMAINS",
    "EXIT_CATEGORIES",
    "FOLLOWUP_MONTHS",
    "FREIN_STATUSES",
    "HEALTH_EVENT_KINDS",
    "HOUSING",
    "OUTBOX_STATUSES",
    "OWNER_KINDS",
    "PREFERENCE_MODES",
    "PROGRAMMES",
    "PROPOSAL_STATUSES",
    "REFERRED_BY",
    "ROLES",
    "RUN_STATUSES",
]

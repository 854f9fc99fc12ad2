"""Every French label a user reads for a code: pages, summaries, preferences.

Why one module: a state, a role or a housing situation must read the same on every page,
in the CLI summary and in the preferences. Labels of the lifecycle (states, outcomes,
refusal reasons) stay next to the transition table and of the domains next to the
taxonomy; they are re-exported here so callers have one place to import from. A test
checks every code of ``engine.domain.vocabulary`` has its label.
"""

from __future__ import annotations

from engine.domain.lifecycle import OUTCOME_LABELS, REFUSAL_LABELS, STATE_LABELS
from partners.taxonomy import DOMAIN_LABELS
from reporting import records as reporting_records

# Pathway facts: the reporting package owns the codes and their labels.
EXIT_LABELS: dict[str, str] = dict(reporting_records.EXIT_CATEGORIES)
HEALTH_EVENT_LABELS: dict[str, str] = dict(reporting_records.HEALTH_EVENTS)
REFERRED_BY_LABELS: dict[str, str] = dict(reporting_records.REFERRED_BY)
FOLLOWUP_LABELS: dict[int, str] = {3: "Suivi à 3 mois", 6: "Suivi à 6 mois", 12: "Suivi à 12 mois"}

ROLE_LABELS: dict[str, str] = {
    "national_admin": "Administration nationale",
    "coordinator": "Coordination",
    "officer": "Chargé·e de partenariats",
    "cip": "CIP / ESP",
    "partner_contact": "Contact partenaire",
    "partner_link": "Partenaire (lien signé)",
}
# The same roles counted in a sentence ("Comptes : coordination 26, chargé·es … 78").
ROLE_PLURAL_LABELS: dict[str, str] = {
    "national_admin": "administration nationale",
    "coordinator": "coordination",
    "officer": "chargé·es de partenariats",
    "cip": "CIP / ESP",
    "partner_contact": "contacts partenaires",
}
PROGRAMME_LABELS: dict[str, str] = {"cvg": "CVG", "phc": "PHC"}
HOUSING_LABELS: dict[str, str] = {
    "street": "À la rue",
    "emergency_shelter": "Hébergement d'urgence",
    "hosted_third_party": "Hébergé·e par un tiers",
    "integration_housing": "Logement d'insertion",
    "housed": "Logé·e",
}
FREIN_STATUS_LABELS: dict[str, str] = {"open": "Ouvert", "lifted": "Levé", "dropped": "Abandonné"}
PROPOSAL_LABELS: dict[str, str] = {
    "proposed": "À valider",
    "validated": "Validée",
    "declined": "Déclinée",
    "expired": "Expirée",
}
RUN_STATUS_LABELS: dict[str, str] = {
    "optimal": "optimale",
    "feasible": "réalisable",
    "infeasible": "impossible",
    "unknown": "inconnue",
    "failed": "en échec",
    "running": "en cours",
}
# Events that are not a row of the lifecycle table (those take the transition's label).
ACTION_LABELS: dict[str, str] = {
    "route": "Orientation automatique",
    "assign": "Attribution à une personne",
    "flag_health_urgency": "Urgence santé signalée",
}
PREFERENCE_MODE_LABELS: dict[str, str] = {
    "immediate": "Immédiatement",
    "digest": "Dans le récapitulatif quotidien",
    "off": "Jamais",
}


def domain_in_sentence(domain: str) -> str:
    """A domain's label inside a sentence ("santé", not "Santé")."""
    return DOMAIN_LABELS.get(domain, domain).lower()


__all__ = [
    "ACTION_LABELS",
    "DOMAIN_LABELS",
    "FREIN_STATUS_LABELS",
    "HOUSING_LABELS",
    "OUTCOME_LABELS",
    "PREFERENCE_MODE_LABELS",
    "PROGRAMME_LABELS",
    "PROPOSAL_LABELS",
    "REFUSAL_LABELS",
    "ROLE_LABELS",
    "ROLE_PLURAL_LABELS",
    "RUN_STATUS_LABELS",
    "STATE_LABELS",
    "domain_in_sentence",
]

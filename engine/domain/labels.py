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
    "shortlisted": "En liste de commission (rang non atteint)",
    "withdrawn": "Retirée de la liste de commission",
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
    "record_choices": "Choix de la personne enregistrés",
}
# The case timeline: what happened, in words ("Prise en charge", "Annulée"). Actions whose
# sentence names a target (an offer, a pool, a person, a reason) are completed by the case file.
EVENT_LABELS: dict[str, str] = {
    "route": "Orientation créée",
    "take": "Prise en charge",
    "refer": "Orientée vers un partenaire",
    "waitlist": "Mise en attente d'une place",
    "propose": "Place proposée",
    "validate": "Place validée",
    "decline_proposal": "Proposition de place déclinée",
    "expire_proposal": "Proposition de place expirée sans décision",
    "record_choices": "Choix de la personne enregistrés",
    "partner_accept": "Acceptée par le partenaire",
    "start": "Accompagnement démarré",
    "close": "Clôturée",
    "refuse": "Refusée",
    "expire": "Expirée sans réponse du partenaire",
    "cancel": "Annulée",
    "transfer": "Transférée",
    "assign": "Attribuée à une personne",
    "flag_health_urgency": "Urgence santé signalée",
}
# Flows act under "système : <label>" (``Actor.system``); the timeline says who they are.
SYSTEM_ACTOR_LABELS: dict[str, str] = {
    "intake": "Orientation automatique à l'arrivée du frein",
    "relances": "Relances automatiques (délai de réponse dépassé)",
    "allocation": "Attribution automatique des places",
    "commission": "Passage automatique au rang suivant de la commission",
    "personne sortie du programme": "Sortie du programme enregistrée sur le parcours",
    "seed": "Données de démonstration",
}
SYSTEM_ACTOR_DEFAULT = "Traitement automatique"
# Why the intake routed a frein where it did (``matching.routing`` reason codes), as sentences.
# Placeholders are filled by the case file with names, never with internal ids.
ROUTING_REASON_LABELS: dict[str, str] = {
    "direct_partner": "Orientée directement vers {offer}, qui accepte les orientations directes.",
    "no_territory": "Chantier hors des territoires Convergence : confiée à la file nationale.",
    "no_coordinator": "Aucune coordination sur ce territoire : confiée à la file nationale.",
    "unknown_thematique": (
        "Thématique absente de la nomenclature : confiée à la coordination territoriale."
    ),
    "transverse": (
        "Aucun partenaire acceptant les orientations directes auquel la personne est éligible : "
        "confiée à la coordination territoriale."
    ),
    "no_officer": (
        "Aucune personne chargée de partenariats de ce domaine sur le territoire : confiée à "
        "la coordination territoriale."
    ),
    "sticky": (
        "Confiée à {officer}, qui suit déjà cette personne dans ce domaine "
        "({load} orientations en cours sur {cap} au moment du routage)."
    ),
    "sticky_owner_full": (
        "{previous}, qui suit déjà cette personne, était à son plafond "
        "({previous_load} sur {previous_cap}) : confiée à {officer}, la personne la moins "
        "chargée ({load} sur {cap})."
    ),
    "only_officer": (
        "Confiée à {officer}, seule personne chargée de ce domaine sur le territoire "
        "({load} orientations en cours sur {cap})."
    ),
    "least_loaded": (
        "Confiée à {officer}, la personne la moins chargée du domaine sur le territoire "
        "({load} orientations en cours sur {cap})."
    ),
    "sticky_all_at_cap": (
        "Toutes les personnes chargées du domaine étaient à leur plafond : confiée à "
        "{officer}, qui suit déjà cette personne, au-delà de son plafond ({load} sur {cap})."
    ),
    "all_at_cap_to_coordinator": (
        "Toutes les personnes chargées du domaine étaient à leur plafond : confiée à {target}."
    ),
    "all_at_cap": (
        "Toutes les personnes chargées du domaine étaient à leur plafond : confiée à "
        "{officer}, la moins chargée, au-delà de son plafond ({load} sur {cap})."
    ),
    "transferred": "Reprise d'une orientation précédente, transférée.",
}
ROUTING_REASON_DEFAULT = "Règle de routage appliquée."
# Destructive actions of the case page: the confirmation step's heading and button.
CONFIRM_LABELS: dict[str, tuple[str, str]] = {
    "cancel": ("Confirmer l'annulation ?", "Oui, annuler l'orientation"),
    "refuse": ("Confirmer le refus ?", "Oui, refuser l'orientation"),
    "transfer": ("Confirmer le transfert ?", "Oui, transférer l'orientation"),
    "close": ("Confirmer la clôture ?", "Oui, clôturer l'orientation"),
}
PREFERENCE_MODE_LABELS: dict[str, str] = {
    "immediate": "Immédiatement",
    "digest": "Dans le récapitulatif quotidien",
    "off": "Jamais",
}


def domain_in_sentence(domain: str) -> str:
    """A domain's label inside a sentence ("santé", not "Santé")."""
    return DOMAIN_LABELS.get(domain, domain).lower()


# The states counted in the queue's summary bar ("Nouvelles 367 · En qualification 12").
STATE_PLURAL_LABELS: dict[str, str] = {
    "new": "Nouvelles",
    "triaging": "En qualification",
    "referred": "Orientées",
    "waitlisted": "En attente de place",
    "proposed": "Places proposées",
    "accepted": "Acceptées",
    "in_progress": "En cours",
    "closed": "Clôturées",
    "refused": "Refusées",
    "expired": "Expirées",
    "cancelled": "Annulées",
    "transferred": "Transférées",
}
OVERDUE_LABEL = "En retard"
DEADLINE_SOON_DAYS = 3  # "J-3" to "J-1" before a deadline


def fr_number(n: int) -> str:
    """A count as French typography writes it: 12 345 (narrow no-break space)."""
    return f"{n:,}".replace(",", "\u202f")


def plural(n: int, singular: str, plural_form: str | None = None) -> str:
    """ "1 orientation", "0 orientation", "2 orientations": in French 0 and 1 are singular.
    ``singular`` may be several words ("orientation prise en charge"): give ``plural_form``."""
    word = singular if abs(n) < 2 else (plural_form or singular + "s")
    return f"{fr_number(n)} {word}"


def deadline_badge(overdue: bool, due_in_days: int | None) -> tuple[str, str] | None:
    """The deadline badge of a queue row, (label, CSS class): "En retard", "Échéance
    aujourd'hui", "J-2"; None when the deadline is further away or there is none."""
    if overdue:
        return OVERDUE_LABEL, "overdue"
    if due_in_days is None or due_in_days < 0 or due_in_days > DEADLINE_SOON_DAYS:
        return None
    if due_in_days == 0:
        return "Échéance aujourd'hui", "due-today"
    return f"J-{due_in_days}", "due-soon"


__all__ = [
    "ACTION_LABELS",
    "CONFIRM_LABELS",
    "EVENT_LABELS",
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
    "ROUTING_REASON_DEFAULT",
    "ROUTING_REASON_LABELS",
    "RUN_STATUS_LABELS",
    "STATE_LABELS",
    "SYSTEM_ACTOR_DEFAULT",
    "SYSTEM_ACTOR_LABELS",
    "domain_in_sentence",
    "STATE_PLURAL_LABELS",
    "OVERDUE_LABEL",
    "deadline_badge",
    "fr_number",
    "plural",
]


# Units of counted pools (``partners.catalogue.UNIT_KINDS``), singular and plural, so a count
# reads "1 logement", "3 logements", "54 bilans de santé".
UNIT_LABELS: dict[str, tuple[str, str]] = {
    "logement": ("logement", "logements"),
    "mesure": ("mesure d'accompagnement", "mesures d'accompagnement"),
    "bilan": ("bilan de santé", "bilans de santé"),
    "place": ("place d'hébergement", "places d'hébergement"),
    "poste": ("poste", "postes"),
}


def unit_count(n: int, kind: str | None) -> str:
    """A number of units of a pool in words: "3 logements", "1 place d'hébergement"."""
    singular, plural_form = UNIT_LABELS.get(kind or "", ("place", "places"))
    return plural(n, singular, plural_form)


# Why a slot proposal was declined: the refusal reasons that fit a declined proposal
# (codes of ``REFUSAL_LABELS``; ``other`` needs a note).
DECLINE_REASONS: tuple[str, ...] = (
    "declined_by_person",
    "not_eligible",
    "unreachable",
    "met_elsewhere",
    "other",
)
DECLINE_LABELS: dict[str, str] = {code: REFUSAL_LABELS[code] for code in DECLINE_REASONS}


# The commission's decisions on the current rank of a unit (URL and form value -> words).
COMMISSION_DECISION_LABELS: dict[str, str] = {
    "attribue": "Attribué",
    "refus_candidat": "Refus du candidat",
    "refus_commission": "Refus de la commission",
}
# Why the commission itself refused a candidate (``other`` needs a note). Stored on the
# proposal as ``commission:<code>`` so it never reads as the person's own refusal.
COMMISSION_REFUSAL_REASONS: tuple[str, ...] = (
    "incomplete_file",
    "insufficient_resources",
    "unsuitable_household",
    "priority_elsewhere",
    "other",
)
COMMISSION_REFUSAL_LABELS: dict[str, str] = {
    "incomplete_file": "Dossier incomplet",
    "insufficient_resources": "Ressources insuffisantes pour le loyer",
    "unsuitable_household": "Logement inadapté à la composition du foyer",
    "priority_elsewhere": "Candidature jugée moins prioritaire par la commission",
    "other": "Autre (préciser)",
}
COMMISSION_REASON_PREFIX = "commission:"


def decline_reason_label(stored: str | None) -> str | None:
    """The French words of a proposal's stored decline reason: a code's label, or the text
    stored by older versions (and by the door when a referral left "proposed" another way)."""
    if not stored:
        return None
    if stored.startswith(COMMISSION_REASON_PREFIX):
        code = stored.removeprefix(COMMISSION_REASON_PREFIX)
        words = "Autre motif" if code == "other" else COMMISSION_REFUSAL_LABELS.get(code, code)
        return f"Refus de la commission : {words}"
    return DECLINE_LABELS.get(stored, REFUSAL_LABELS.get(stored, stored))


# Who started an allocation run without an account: the weekly schedule or the CLI.
RUN_WITHOUT_ACCOUNT_LABEL = "Planification automatique"

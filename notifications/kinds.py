"""The catalogue of message kinds: label, criticality and exact context of each.

Why a declared catalogue: the engine decides what to tell whom, but this module
fixes *what can be said*. Each kind lists the only variables its templates may
receive, each with a narrow field type (see ``notifications.fields``), so a
health or housing detail cannot slip into an email by an extra key or a
wrongly-filled field. The preferences page reads the French labels and the
``critical`` flag (critical kinds cannot be switched off) from here too.

Partner kinds are *partner-facing*: their readers answer through a signed link, without an
account, so their templates and footer never ask anyone to log in; the orientations and
reminders they carry are gathered by default in one ``partner_digest`` per contact and day.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from notifications.fields import (
    Choice,
    ContextError,
    Count,
    Day,
    DisplayName,
    Field,
    ListOf,
    OptionalReference,
    PartnerName,
    PlaceName,
    Reference,
    Url,
    check_record,
)

# Variables every kind receives: who we greet, and where to manage preferences.
COMMON_FIELDS: dict[str, Field] = {
    "recipient_name": DisplayName(),
    "preferences_url": Url(),
}

# The short French label of each digestible kind on a daily-digest line: a closed
# vocabulary, so a digest line can never be free text.
DIGEST_ITEM_LABELS: dict[str, str] = {
    "new_referrals": "Nouvelle orientation",
    "triage_due_soon": "Qualification à faire",
    "triage_overdue": "Qualification en retard",
    "triage_escalation": "Orientation à réattribuer",
    "partner_orientation": "Nouvelle orientation à examiner",
    "partner_reminder": "Relance : réponse attendue",
    "partner_answered": "Réponse d'un partenaire reçue",
    "allocation_ready": "Propositions à valider",
    "slot_validated": "Place validée",
    "outcome_due": "Résultat à saisir",
    "followup_due": "Suivi post-sortie à faire",
    "retention_notice": "Dossiers bientôt anonymisés",
}


@dataclass(frozen=True)
class KindSpec:
    """One message kind: what users see of it and which variables it accepts."""

    slug: str
    label: str
    critical: bool
    reason: str  # completes "Vous recevez ce message car …"
    fields: Mapping[str, Field] = field(default_factory=dict)
    partner_facing: bool = False  # read by a partner contact, who needs no account

    @property
    def variables(self) -> frozenset[str]:
        """Names of the context variables the kind accepts (all required)."""
        return frozenset(self.fields)


def _kind(
    slug: str, label: str, reason: str, *, critical: bool = False, **fields: Field
) -> KindSpec:
    partner_facing = reason == _PARTNER
    common = {**COMMON_FIELDS, "recipient_name": DisplayName(allow_empty=True)}
    return KindSpec(
        slug,
        label,
        critical,
        reason,
        {**(common if partner_facing else COMMON_FIELDS), **fields},
        partner_facing=partner_facing,
    )


_CHARGE = "vous êtes chargé·e de partenariats et des orientations vous sont confiées"
_COORD = "vous coordonnez l'équipe de votre territoire"
_PARTNER = "votre structure a été sollicitée par le réseau Convergence France"
_CHANTIER = "vous accompagnez des salarié·es de votre chantier"

# A partner's answer to an orientation, in words (``partner_answered``).
PARTNER_ANSWERS = ("acceptée", "refusée")
# The kinds a partner contact receives one by one or in the partner digest, never "off":
# each carries an answer deadline.
PARTNER_DIGESTIBLE_KINDS: tuple[str, ...] = ("partner_orientation", "partner_reminder")

_SPECS: tuple[KindSpec, ...] = (
    _kind(
        "new_referrals",
        "Nouvelles orientations dans ma file",
        _CHARGE,
        count=Count(minimum=1),
        url=Url(),
    ),
    _kind(
        "triage_due_soon",
        "Qualification bientôt due",
        _CHARGE,
        reference=Reference(),
        due_on=Day(),
        url=Url(),
    ),
    _kind(
        "triage_overdue",
        "Qualification en retard",
        _CHARGE,
        critical=True,
        reference=Reference(),
        due_on=Day(),
        url=Url(),
    ),
    _kind(
        "triage_escalation",
        "Orientation en retard signalée à la coordination",
        _COORD,
        critical=True,
        reference=Reference(),
        officer_name=DisplayName(),
        territory=PlaceName(),
        due_on=Day(),
        url=Url(),
    ),
    _kind(
        "partner_orientation",
        "Nouvelle orientation vers ma structure",
        _PARTNER,
        critical=True,
        partner_name=PartnerName(),
        reference=Reference(),
        territory=PlaceName(),
        action_url=Url(),
        expires_on=Day(),
    ),
    _kind(
        "partner_reminder",
        "Relance d'une orientation sans réponse",
        _PARTNER,
        critical=True,
        partner_name=PartnerName(),
        reference=Reference(),
        sent_on=Day(),
        action_url=Url(),
        expires_on=Day(),
    ),
    _kind(
        "partner_answered",
        "Réponse d'un partenaire",
        "vous suivez cette orientation",
        reference=Reference(),
        partner_name=PartnerName(),
        answer=Choice(frozenset(PARTNER_ANSWERS)),
        url=Url(),
    ),
    _kind(
        "allocation_ready",
        "Propositions d'attribution à valider",
        _COORD,
        count=Count(minimum=1),
        territory=PlaceName(),
        url=Url(),
    ),
    _kind(
        "slot_validated",
        "Place validée",
        "vous suivez cette orientation",
        reference=Reference(),
        territory=PlaceName(),
        url=Url(),
    ),
    _kind(
        "outcome_due",
        "Résultat d'une orientation à saisir",
        _CHANTIER,
        reference=Reference(),
        due_on=Day(),
        url=Url(),
    ),
    _kind(
        "followup_due",
        "Suivi post-sortie à réaliser",
        _CHANTIER,
        reference=Reference(),
        months=Choice(frozenset({3, 6, 12})),
        due_on=Day(),
        url=Url(),
    ),
    _kind(
        "retention_notice",
        "Dossiers bientôt anonymisés",
        _CHANTIER,
        count=Count(minimum=1),
        held=Count(),
        due_on=Day(),
        url=Url(),
    ),
)

_DIGESTIBLE = tuple(spec.slug for spec in _SPECS)
# Lines of one partner digest: a contact who received 673 orientations in a day gets one mail
# (a larger day is split in parts of this size, see ``engine.outbox.digest``).
PARTNER_DIGEST_MAX_ITEMS = 1000

_SPECS += (
    _kind(
        "daily_digest",
        "Récapitulatif quotidien",
        "vous avez choisi de recevoir un récapitulatif quotidien",
        day=Day(),
        url=Url(),
        items=ListOf(
            (
                ("kind", Choice(frozenset(_DIGESTIBLE))),
                ("reference", OptionalReference()),
                ("count", Count()),
                ("label", Choice(frozenset(DIGEST_ITEM_LABELS.values()))),
                ("url", Url()),
            )
        ),
    ),
)

_SPECS += (
    _kind(
        "partner_digest",
        "Récapitulatif quotidien des orientations",
        _PARTNER,
        critical=True,
        day=Day(),
        items=ListOf(
            (
                ("kind", Choice(frozenset(PARTNER_DIGESTIBLE_KINDS))),
                (
                    "label",
                    Choice(frozenset(DIGEST_ITEM_LABELS[k] for k in PARTNER_DIGESTIBLE_KINDS)),
                ),
                ("partner_name", PartnerName()),
                ("reference", Reference()),
                ("territory", PlaceName()),
                ("action_url", Url()),
                ("expires_on", Day()),
            ),
            max_items=PARTNER_DIGEST_MAX_ITEMS,
        ),
    ),
)

KINDS: dict[str, KindSpec] = {spec.slug: spec for spec in _SPECS}
# Kinds read by partner contacts (no account: their mails never say "connectez-vous").
PARTNER_FACING_KINDS: frozenset[str] = frozenset(s.slug for s in _SPECS if s.partner_facing)
CRITICAL_KINDS: frozenset[str] = frozenset(s.slug for s in _SPECS if s.critical)
# Kinds a user may receive inside the daily digest, in display order.
DIGESTIBLE_KINDS: tuple[str, ...] = _DIGESTIBLE


def get_kind(kind: str) -> KindSpec:
    """Look a kind up, failing loudly on a typo rather than sending nothing."""
    try:
        return KINDS[kind]
    except KeyError:
        raise ContextError(f"unknown message kind {kind!r}") from None


def validate_context(
    kind: str,
    context: Mapping[str, Any],
    *,
    base_url: str | None = None,
    partner_names: Collection[str] = (),
) -> dict[str, Any]:
    """Check a context against the kind's declaration and return a clean copy.

    Raises ``ContextError`` on a missing or unexpected variable and on any value
    outside its field type (a non-reference, a link outside ``base_url``, a name
    that reads like a sentence, a sensitive term…). Why strict: the context is
    the only channel from case files to emails.
    """
    spec = get_kind(kind)
    return check_record(kind, spec.fields, context, base_url=base_url, partner_names=partner_names)

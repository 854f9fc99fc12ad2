"""A frein added by hand: the chantier's CIP/ESP notes a new barrier of a person.

Why here, beside the CSV import: a frein is an intake input. It is classified the way the
import classifies it — a data·inclusion v1 thématique slug (``partners.taxonomy``), its domain
from the routing rules (``RoutingRules.domain_of``, the one decision) — and written open and
unrouted: the intake flow routes it on its next run like any imported frein. Adding a frein
is not a state change of any orientation; it writes an audit row in the caller's
transaction.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.access.permissions import can
from engine.domain.clock import Clock
from engine.domain.errors import ANONYMISED, NotFound, Refused
from engine.domain.labels import FREIN_STATUS_LABELS
from engine.store import models as m
from matching.rules import RoutingRules
from partners.taxonomy import UnknownThematique, canonical_slug, label_of


def add_frein(
    session: Session,
    user: m.StaffUser,
    salarie_id: int,
    thematique: str | None,
    *,
    clock: Clock,
    rules: RoutingRules,
) -> m.Frein:
    """A new open frein of the person, left for the intake to route.

    Raises NotFound when the person is missing or out of the user's reach (the chantier's
    CIP/ESP, the coordination of its territory, the national team), Refused (French) for an
    unknown thématique, a frein the person already has, or a person who left the programme."""
    person = session.get(m.Salarie, salarie_id)
    if person is None or not can(user, "add_frein", person):
        raise NotFound("salarié·e introuvable")
    if person.anonymised_at is not None:
        raise Refused(ANONYMISED)
    if not thematique or not thematique.strip():
        raise Refused("choisissez la thématique du frein")
    try:
        slug = canonical_slug(thematique[:200])
    except UnknownThematique:
        raise Refused("thématique inconnue : choisissez-la dans la liste") from None
    if person.exit_date is not None:
        raise Refused("la personne est sortie du programme : aucun frein ne peut être ajouté")
    existing = session.scalar(
        select(m.Frein).where(m.Frein.salarie_id == person.id, m.Frein.thematique == slug)
    )
    if existing is not None:
        status = FREIN_STATUS_LABELS.get(existing.status, existing.status).lower()
        raise Refused(
            f"le frein « {label_of(slug)} » est déjà enregistré pour cette personne "
            f"(statut : {status})"
        )
    now = clock.now()
    frein = m.Frein(
        salarie_id=person.id,
        thematique=slug,
        domain=rules.domain_of(slug),
        status="open",
        identified_at=clock.today(),
        created_at=now,
    )
    session.add(frein)
    session.flush()
    session.add(
        m.AuditLog(
            actor_user_id=user.id,
            actor_label=user.display_name[:80],
            action="add_frein",
            object_type="frein",
            object_id=str(frein.id),
            at=now,
            details={"salarie_id": person.id, "thematique": slug, "domain": frein.domain},
        )
    )
    return frein

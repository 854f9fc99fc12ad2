"""What the network adds to a service of the national referential: eligibility rules and a
local counted pool. And the offer's page that shows it all.

Why: data·inclusion says who a service is for in words (``publics``, ``conditions_acces``);
routing needs rules it can evaluate, and capacities (CDC units, IML/ALT measures, CNAM
checks) exist nowhere in the referential. A chargé·e of a territory the service covers
attaches rules (``partners.eligibility_rules``, the catalogue's rules as data) and ties a
counted pool of their territory to it; an import never touches either. Every change writes an
audit row. The catalogue's own offers are edited in ``catalogue.json``, not here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from engine.domain.clock import Clock
from engine.domain.errors import NotFound, Refused
from engine.store import models as m
from partners.catalogue import PROGRAMMES, UNIT_KINDS
from partners.data_inclusion_review import review_reasons
from partners.eligibility_rules import RULE_FIELDS, Rule

MAX_RULES = 12
MAX_CAPACITY = 10_000
OPS: dict[str, str] = {
    "eq": "égal à",
    "ne": "différent de",
    "in": "parmi",
    "not_in": "hors de",
    "gte": "au moins",
    "lte": "au plus",
    "gt": "plus de",
    "lt": "moins de",
    "is_true": "oui",
    "is_false": "non",
}


@dataclass
class OfferPage:
    partner: m.Partner
    offer: m.Offer
    service: m.ImportedService | None  # None: an offer of the catalogue
    coverage_names: list[str] | None
    review: tuple[str, ...]
    rules: list[Rule]
    pools: list[m.SlotPool]
    editable: bool  # the user may add rules and pools
    pool_territories: list[m.Territory] = field(default_factory=list)  # where they may tie one


def _coverage(partner: m.Partner) -> list[str] | None:
    return None if partner.coverage is None else [str(c) for c in partner.coverage]


def may_edit(user: m.StaffUser, partner: m.Partner, territory_code: str | None) -> bool:
    """The national team, or a chargé·e / coordination of a territory the service covers."""
    if not user.active:
        return False
    if user.role == "national_admin":
        return True
    if user.role not in ("officer", "coordinator") or territory_code is None:
        return False
    coverage = _coverage(partner)
    return coverage is None or territory_code in coverage


def _load(session: Session, offer_id: int) -> tuple[m.Offer, m.Partner, m.ImportedService | None]:
    offer = session.get(m.Offer, offer_id)
    if offer is None:
        raise NotFound("offre introuvable")
    partner = session.get(m.Partner, offer.partner_id)
    assert partner is not None
    service = session.scalar(
        select(m.ImportedService).where(m.ImportedService.offer_id == offer.id)
    )
    return offer, partner, service


def _user_territory(session: Session, user: m.StaffUser) -> m.Territory | None:
    return session.get(m.Territory, user.territory_id) if user.territory_id else None


def offer_page(session: Session, user: m.StaffUser, offer_id: int, *, today: date) -> OfferPage:
    """An offer with its source, freshness, rules and pools; who may edit it."""
    if not user.active or user.role == "partner_contact":
        raise NotFound("offre introuvable")
    offer, partner, service = _load(session, offer_id)
    names = dict(session.execute(select(m.Territory.code, m.Territory.name)).all())
    own = _user_territory(session, user)
    editable = service is not None and may_edit(user, partner, own.code if own else None)
    territories: list[m.Territory] = []
    if editable:
        coverage = _coverage(partner)
        if user.role == "national_admin":
            territories = [
                t
                for t in session.scalars(select(m.Territory).order_by(m.Territory.name))
                if coverage is None or t.code in coverage
            ]
        elif own is not None:
            territories = [own]
    coverage = _coverage(partner)
    return OfferPage(
        partner=partner,
        offer=offer,
        service=service,
        coverage_names=None if coverage is None else sorted(names.get(c, c) for c in coverage),
        review=review_reasons(service.date_maj, service.score_qualite, today) if service else (),
        rules=[Rule.model_validate(r) for r in offer.rules or []],
        pools=list(
            session.scalars(
                select(m.SlotPool).where(m.SlotPool.offer_id == offer.id).order_by(m.SlotPool.name)
            )
        ),
        editable=editable,
        pool_territories=territories,
    )


def _editable(session: Session, user: m.StaffUser, offer_id: int) -> tuple[m.Offer, m.Partner]:
    offer, partner, service = _load(session, offer_id)
    if service is None:
        raise Refused(
            "les offres du catalogue Convergence se modifient dans le fichier du catalogue"
        )
    own = _user_territory(session, user)
    if not may_edit(user, partner, own.code if own else None):
        raise NotFound("offre introuvable")
    return offer, partner


def parse_rule_value(field_name: str, op: str, text: str) -> Any:
    """The value of a rule typed in a form: a list for in/not_in, a number for comparisons,
    nothing for is_true/is_false, else a number when it reads as one."""
    text = (text or "").strip()
    if op in ("is_true", "is_false"):
        return None
    if op in ("in", "not_in"):
        return [_scalar(v.strip()) for v in text.replace(";", ",").split(",") if v.strip()]
    if op in ("gte", "lte", "gt", "lt"):
        try:
            number = float(text.replace(",", "."))
        except ValueError:
            raise Refused(f"la règle « {op} » demande un nombre (reçu « {text[:40]} »)") from None
        return int(number) if number.is_integer() else number
    return _scalar(text) if text else None


def _scalar(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return text


def add_rule(
    session: Session,
    user: m.StaffUser,
    offer_id: int,
    *,
    field_name: str,
    op: str,
    value: str,
    label: str,
    clock: Clock,
) -> Rule:
    """Attach one eligibility rule to an imported offer (validated like the catalogue's)."""
    offer, _ = _editable(session, user, offer_id)
    label = " ".join((label or "").split())[:300]
    if not label:
        raise Refused("la phrase affichée quand la règle écarte quelqu'un est obligatoire")
    if field_name not in RULE_FIELDS:
        raise Refused(f"champ de règle inconnu « {field_name[:40]} »")
    if op not in OPS:
        raise Refused(f"opérateur inconnu « {op[:20]} »")
    try:
        rule = Rule.model_validate(
            {"field": field_name, "op": op, "value": parse_rule_value(field_name, op, value),
             "label": label}
        )  # fmt: skip
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Refused(
            str(first.get("msg", "règle invalide")).removeprefix("Value error, ")
        ) from None
    values = rule.value if isinstance(rule.value, list) else [rule.value]
    if rule.field == "programme" and any(v not in PROGRAMMES for v in values):
        raise Refused("programme inconnu (attendus : cvg, phc)")
    if rule.field == "territory":
        known = set(session.scalars(select(m.Territory.code)))
        if any(v not in known for v in values):
            raise Refused("territoire inconnu dans la règle")
    rules = list(offer.rules or [])
    if len(rules) >= MAX_RULES:
        raise Refused(f"une offre porte au plus {MAX_RULES} règles")
    offer.rules = [*rules, rule.model_dump()]
    _audit(session, user, "add_offer_rule", offer, clock, {"rule": rule.model_dump()})
    return rule


def remove_rule(
    session: Session, user: m.StaffUser, offer_id: int, *, index: int, clock: Clock
) -> None:
    """Remove the rule at ``index`` (1-based, as the page numbers them)."""
    offer, _ = _editable(session, user, offer_id)
    rules = list(offer.rules or [])
    if not 1 <= index <= len(rules):
        raise Refused("règle introuvable")
    removed = rules.pop(index - 1)
    offer.rules = rules
    _audit(session, user, "remove_offer_rule", offer, clock, {"rule": removed})


def tie_pool(
    session: Session,
    user: m.StaffUser,
    offer_id: int,
    *,
    territory_code: str,
    capacity: int,
    unit_kind: str,
    clock: Clock,
) -> m.SlotPool:
    """A counted pool of ``territory_code`` for the current year, tied to an imported offer.

    The offer becomes counted (``slot_based``): it is then reached through the waitlist and
    the allocation, like the catalogue's counted offers, in every territory it covers."""
    offer, partner = _editable(session, user, offer_id)
    territory = session.scalar(select(m.Territory).where(m.Territory.code == territory_code))
    if territory is None:
        raise Refused("territoire inconnu")
    if user.role != "national_admin" and territory.id != user.territory_id:
        raise Refused("un contingent se rattache au territoire de la personne qui le déclare")
    coverage = _coverage(partner)
    if coverage is not None and territory.code not in coverage:
        raise Refused(f"« {offer.name} » n'intervient pas sur le territoire {territory.name}")
    if unit_kind not in UNIT_KINDS:
        raise Refused(f"unité inconnue « {unit_kind[:20]} »")
    if offer.unit_kind is not None and offer.unit_kind != unit_kind:
        raise Refused(
            f"les contingents de cette offre se comptent en « {UNIT_KINDS[offer.unit_kind]} »"
        )
    if not 1 <= capacity <= MAX_CAPACITY:
        raise Refused(f"la capacité va de 1 à {MAX_CAPACITY}")
    today = clock.today()
    code = f"{offer.code}-{territory.code}-{today.year}"[:80]
    if session.scalar(select(m.SlotPool.id).where(m.SlotPool.code == code)) is not None:
        raise Refused(f"un contingent {today.year} existe déjà pour ce territoire")
    pool = m.SlotPool(
        code=code,
        offer_id=offer.id,
        name=f"{partner.name} — {offer.name} ({territory.name})"[:200],
        scope=[territory.code],
        territory_id=territory.id,
        period_start=date(today.year, 1, 1),
        period_end=date(today.year, 12, 31),
        capacity=capacity,
        unit_kind=unit_kind,
    )
    session.add(pool)
    session.flush()
    session.execute(
        insert(m.table_of(m.SlotUnit)),
        [{"pool_id": pool.id, "unit_no": n} for n in range(1, capacity + 1)],
    )
    offer.slot_based = True
    offer.unit_kind = unit_kind
    _audit(
        session,
        user,
        "tie_pool",
        offer,
        clock,
        {"pool": code, "territory": territory.code, "capacity": capacity, "unit": unit_kind},
    )
    return pool


def _audit(
    session: Session,
    user: m.StaffUser,
    action: str,
    offer: m.Offer,
    clock: Clock,
    details: dict[str, Any],
) -> None:
    session.add(
        m.AuditLog(
            actor_user_id=user.id,
            actor_label=user.display_name[:80],
            action=action,
            object_type="offer",
            object_id=str(offer.id),
            at=clock.now(),
            details=details,
        )
    )

"""The partner directory as the pages list it (name, offers, coverage by territory name)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from sqlalchemy import (
    select,
)
from sqlalchemy.orm import Session

from engine.domain.labels import unit_count
from engine.store import models as m
from partners.taxonomy import label_of

MAX_SEARCH = 80  # characters of a directory search


@dataclass
class PartnerRow:
    partner: m.Partner
    offers: list[m.Offer]
    coverage_names: list[str] | None = field(default=None)  # None: national coverage
    capacity: dict[int, int] = field(default_factory=dict)  # counted offer id -> units

    def offer_capacity(self, offer: m.Offer) -> str | None:
        """A counted offer's units over its pools, in words ("54 bilans de santé")."""
        if not offer.slot_based or offer.id not in self.capacity:
            return None
        return unit_count(self.capacity[offer.id], offer.unit_kind)


def _fold(text: str) -> str:
    """Lower case without accents, so "sante" finds "Santé"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _matches(partner: m.Partner, offers: list[m.Offer], needle: str) -> bool:
    """The search finds a partner by its name, an offer's name, or a thématique (slug or
    French label) of one of its offers."""
    haystack = [partner.name]
    for o in offers:
        haystack.append(o.name)
        for th in o.thematiques or []:
            haystack += [str(th), label_of(str(th))]
    return any(needle in _fold(h) for h in haystack)


def partner_directory(
    session: Session,
    user: m.StaffUser,
    *,
    territory: str | None = None,
    domain: str | None = None,
    search: str | None = None,
) -> list[PartnerRow]:
    """Partners and their offers, optionally those covering one territory, of one domain, or
    matching a search (name or thématique); coverage is given by territory names."""
    stmt = select(m.Partner).order_by(m.Partner.name)
    if domain:
        stmt = stmt.where(m.Partner.domain == domain)
    partners = session.scalars(stmt).all()
    offers: dict[int, list[m.Offer]] = {}
    for o in session.scalars(select(m.Offer).order_by(m.Offer.name)):
        offers.setdefault(o.partner_id, []).append(o)
    names = dict(session.execute(select(m.Territory.code, m.Territory.name)).all())
    capacity: dict[int, int] = {}
    for offer_id, units in session.execute(select(m.SlotPool.offer_id, m.SlotPool.capacity)):
        capacity[offer_id] = capacity.get(offer_id, 0) + int(units)
    needle = _fold(search.strip()[:MAX_SEARCH]) if search and search.strip() else None
    rows = []
    for p in partners:
        if territory and not (p.coverage is None or territory in p.coverage):
            continue
        if needle and not _matches(p, offers.get(p.id, []), needle):
            continue
        coverage = None
        if p.coverage is not None:
            coverage = sorted(names.get(str(c), str(c)) for c in p.coverage)
        mine = offers.get(p.id, [])
        caps = {o.id: capacity[o.id] for o in mine if o.id in capacity}
        rows.append(PartnerRow(p, mine, coverage, caps))
    return rows

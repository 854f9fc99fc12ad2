"""The partner directory as the pages list it (name, offers, coverage)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    select,
)
from sqlalchemy.orm import Session

from engine.store import models as m


@dataclass
class PartnerRow:
    partner: m.Partner
    offers: list[m.Offer]


def partner_directory(
    session: Session,
    user: m.StaffUser,
    *,
    territory: str | None = None,
    domain: str | None = None,
) -> list[PartnerRow]:
    """Partners and their offers, optionally those covering one territory or one domain."""
    stmt = select(m.Partner).order_by(m.Partner.name)
    if domain:
        stmt = stmt.where(m.Partner.domain == domain)
    partners = session.scalars(stmt).all()
    offers: dict[int, list[m.Offer]] = {}
    for o in session.scalars(select(m.Offer).order_by(m.Offer.name)):
        offers.setdefault(o.partner_id, []).append(o)
    return [
        PartnerRow(p, offers.get(p.id, []))
        for p in partners
        if not territory or p.coverage is None or territory in p.coverage
    ]

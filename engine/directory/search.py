"""The directory as the ``/partenaires`` page lists it: the catalogue's partners and the
services imported from data·inclusion, searched by name, thématique, territory and domain.

Why SQL for the services and Python for the catalogue: the catalogue holds a few dozen
partners (read whole, matched accent-insensitively like before); the national referential
holds tens of thousands of services, so they are filtered, counted and paged by the
database — on the ``|a|b|`` columns and the folded names of ``imported_service``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from engine.referrals.queue import like_escape
from engine.store import models as m
from partners.data_inclusion import fold
from partners.data_inclusion_review import LOW_QUALITY_SCORE, months_before, review_reasons
from partners.taxonomy import CATEGORIES, SEPARATOR, THEMATIQUES, label_of

MAX_SEARCH = 80
SERVICES_PAGE = 25
ORIGINS = ("catalogue", "data-inclusion")
CATALOGUE_SOURCE = "Catalogue Convergence (partners/data/catalogue.json)"


@dataclass(frozen=True)
class DirectoryFilters:
    search: str | None = None
    thematique: str | None = None  # a slug of the taxonomy (a category covers its subs)
    territory: str | None = None
    domain: str | None = None
    origin: str | None = None  # None: both, else one of ORIGINS
    to_review: bool = False  # only services "à vérifier"
    withdrawn: bool = False  # the withdrawn services instead of the active ones
    page: int = 1


@dataclass
class CatalogueEntry:
    partner: m.Partner
    offers: list[m.Offer]
    coverage_names: list[str] | None  # None: national
    capacity: dict[int, int] = field(default_factory=dict)  # offer id -> units


@dataclass
class ServiceEntry:
    service: m.ImportedService
    partner: m.Partner
    offer: m.Offer
    coverage_names: list[str] | None  # None: national
    review: tuple[str, ...]  # why "à vérifier" (empty: fresh)
    capacity: int = 0  # units of the local pools tied to it


@dataclass
class Directory:
    catalogue: list[CatalogueEntry]
    services: list[ServiceEntry]
    services_total: int
    page: int
    pages: int
    to_review_total: int


def _thematique_slugs(slug: str) -> list[str]:
    """A category stands for itself and all its sub-thématiques."""
    if slug in CATEGORIES:
        return [s for s in THEMATIQUES if s == slug or s.startswith(slug + SEPARATOR)]
    return [slug]


def _catalogue(
    session: Session, filters: DirectoryFilters, names: dict[str, str]
) -> list[CatalogueEntry]:
    imported = select(m.ImportedService.partner_id)
    partners = session.scalars(
        select(m.Partner).where(m.Partner.id.not_in(imported)).order_by(m.Partner.name)
    ).all()
    ids = [p.id for p in partners]
    offers: dict[int, list[m.Offer]] = {}
    for o in session.scalars(
        select(m.Offer).where(m.Offer.partner_id.in_(ids)).order_by(m.Offer.name)
    ):
        offers.setdefault(o.partner_id, []).append(o)
    capacity: dict[int, int] = {}
    for offer_id, units in session.execute(select(m.SlotPool.offer_id, m.SlotPool.capacity)):
        capacity[offer_id] = capacity.get(offer_id, 0) + int(units)
    needle = fold(filters.search) if filters.search else None
    wanted = set(_thematique_slugs(filters.thematique)) if filters.thematique else None
    out = []
    for p in partners:
        mine = offers.get(p.id, [])
        if filters.territory and not (p.coverage is None or filters.territory in p.coverage):
            continue
        if filters.domain and p.domain != filters.domain:
            continue
        if wanted is not None:
            mine = [o for o in mine if any(o_covers(o, s) for s in wanted)]
            if not mine:
                continue
        if needle and not any(
            needle in fold(text)
            for text in [p.name, *(o.name for o in mine)]
            + [label_of(str(t)) for o in mine for t in o.thematiques or []]
        ):
            continue
        coverage = None if p.coverage is None else sorted(names.get(c, c) for c in p.coverage)
        caps = {o.id: capacity[o.id] for o in mine if o.id in capacity}
        out.append(CatalogueEntry(p, mine, coverage, caps))
    return out


def o_covers(offer: m.Offer, slug: str) -> bool:
    """Whether an offer's thématiques cover ``slug`` (a category covers its subs)."""
    return any(
        slug == t or (SEPARATOR not in t and slug.startswith(t + SEPARATOR))
        for t in (offer.thematiques or [])
    )


def _service_conditions(filters: DirectoryFilters, today: date) -> list[ColumnElement[bool]]:
    S = m.ImportedService
    where: list[ColumnElement[bool]] = [
        S.withdrawn_at.is_not(None) if filters.withdrawn else S.withdrawn_at.is_(None)
    ]
    if filters.territory:
        code = like_escape(filters.territory)
        where.append(or_(S.territories == "*", S.territories.like(f"%|{code}|%", escape="\\")))
    if filters.thematique:
        slug = filters.thematique
        if slug in CATEGORIES:
            where.append(S.thematiques.like(f"%|{like_escape(slug)}--%", escape="\\"))
        else:
            where.append(S.thematiques.like(f"%|{like_escape(slug)}|%", escape="\\"))
    if filters.domain:
        cats = [c for c, t in CATEGORIES.items() if t.domain == filters.domain]
        where.append(
            or_(*(S.thematiques.like(f"%|{like_escape(c)}--%", escape="\\") for c in cats))
        )
    if filters.search:
        needle = like_escape(fold(filters.search))
        where.append(S.search_text.like(f"%{needle}%", escape="\\"))
    if filters.to_review:
        where.append(
            or_(
                S.date_maj < months_before(today, 12),
                and_(S.score_qualite.is_not(None), S.score_qualite < LOW_QUALITY_SCORE),
            )
        )
    return where


def directory(session: Session, filters: DirectoryFilters, *, today: date) -> Directory:
    """The catalogue's partners and a page of imported services matching ``filters``."""
    names = dict(session.execute(select(m.Territory.code, m.Territory.name)).all())
    catalogue = [] if filters.origin == "data-inclusion" else _catalogue(session, filters, names)
    services: list[ServiceEntry] = []
    total = to_review = 0
    page = max(1, filters.page)
    pages = 1
    if filters.origin != "catalogue" and not (
        filters.to_review and filters.withdrawn
    ):  # both: nothing to list
        S = m.ImportedService
        where = _service_conditions(filters, today)
        total = session.scalar(select(func.count()).select_from(S).where(*where)) or 0
        review_where = _service_conditions(
            DirectoryFilters(**{**filters.__dict__, "to_review": True}), today
        )
        to_review = session.scalar(select(func.count()).select_from(S).where(*review_where)) or 0
        pages = max(1, -(-total // SERVICES_PAGE))
        page = min(page, pages)
        rows = session.execute(
            select(S, m.Partner, m.Offer)
            .join(m.Partner, m.Partner.id == S.partner_id)
            .join(m.Offer, m.Offer.id == S.offer_id)
            .where(*where)
            .order_by(m.Offer.name, S.id)
            .limit(SERVICES_PAGE)
            .offset((page - 1) * SERVICES_PAGE)
        ).all()
        caps: dict[int, int] = {}
        offer_ids = [o.id for _, _, o in rows]
        for offer_id, units in session.execute(
            select(m.SlotPool.offer_id, m.SlotPool.capacity).where(
                m.SlotPool.offer_id.in_(offer_ids)
            )
        ):
            caps[offer_id] = caps.get(offer_id, 0) + int(units)
        for s, p, o in rows:
            coverage = None if p.coverage is None else sorted(names.get(c, c) for c in p.coverage)
            services.append(
                ServiceEntry(
                    s,
                    p,
                    o,
                    coverage,
                    review_reasons(s.date_maj, s.score_qualite, today),
                    caps.get(o.id, 0),
                )  # fmt: skip
            )
    return Directory(catalogue, services, total, page, pages, to_review)

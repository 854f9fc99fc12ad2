"""A seeded, routed network with one orientation seen from every role (shared by web and e2e tests).

Why one builder: the permission matrix, the pages and the browser scenarios all need the same
situation — a logement orientation of Paris, taken by a chargé·e and referred to a partner —
and the accounts that should and should not see it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select

from engine.domain.clock import Clock
from engine.intake.run import run_intake
from engine.network.seed import DEMO_PASSWORD, MAIL_DOMAIN, seed_network
from engine.referrals.actions import Actor, transition
from engine.store import models as m
from engine.store.db import Database, unit_of_work
from engine.store.settings import Settings

PASSWORD = DEMO_PASSWORD
TODAY = date(2026, 11, 26)
# The web tests' one clock: the morning of TODAY, then running (sessions, logins, deadlines
# all replay the same way whatever day the suite runs).
CLOCK = Clock.on_day(TODAY)


@dataclass
class World:
    db: Database
    settings: Settings
    emails: dict[str, str]  # role key -> email
    target_id: int  # referred, Paris, logement, chantier of cip_own, offer of partner_addr
    partner_id: int
    offer_id: int
    other_partner_id: int
    identity_last_name: str
    reference: str
    user_ids: dict[str, int] = field(default_factory=dict)
    used: set[int] = field(default_factory=set)  # referrals already taken by a test
    clock: Clock = CLOCK


def _email(local: str) -> str:
    return f"{local}@{MAIL_DOMAIN}"


def build_world(db: Database, *, base_url: str = "http://testserver") -> World:
    settings = Settings(database_url=db.url, base_url=base_url)
    seed_network(db, scale=0.05, seed=1, clock=CLOCK)
    run_intake(db, settings, clock=CLOCK)
    with unit_of_work(db) as s:
        paris = s.scalar(select(m.Territory.id).where(m.Territory.code == "paris"))
        officer = s.scalar(
            select(m.StaffUser).where(m.StaffUser.email == _email("logement.paris.1"))
        )
        candidates = s.scalars(
            select(m.Referral)
            .where(m.Referral.state == "new", m.Referral.territory_id == paris,
                   m.Referral.domain == "logement")
            .order_by(m.Referral.id)
        ).all()  # fmt: skip
        target = None
        for ref in candidates:
            if ref.suggestions:
                target = ref
                break
        assert target is not None, "the seed has no Paris logement referral with a suggestion"
        # The first suggestion a chargé·e may refer to directly (counted pools go through
        # the waitlist and the allocation).
        offer_id = next(int(sg[0]) for sg in target.suggestions
                        if not s.get(m.Offer, int(sg[0])).slot_based)  # fmt: skip
        actor = Actor.of(officer)
        transition(s, settings, target.id, "take", actor=actor, clock=CLOCK)
        transition(s, settings, target.id, "refer", actor=actor, offer_id=offer_id, clock=CLOCK)
        offer = s.get(m.Offer, offer_id)
        partner = s.get(m.Partner, offer.partner_id)
        other = s.scalar(select(m.Partner).where(m.Partner.id != partner.id).order_by(m.Partner.id))
        chantier = s.get(m.Chantier, target.chantier_id)
        other_chantier = s.scalar(select(m.Chantier).where(m.Chantier.code == "lyon-aci-01"))
        identity = s.get(m.SalarieIdentity, target.salarie_id)
        emails = {
            "admin": _email("admin"),
            "coordinator": _email("coordination.paris.1"),
            "coordinator_other": _email("coordination.lyon.1"),
            "officer": _email("logement.paris.1"),
            "officer_other_domain": _email("emploi.paris.1"),
            "officer_other_territory": _email("logement.lyon.1"),
            "cip": _email(f"cip.{chantier.code}"),
            "cip_other": _email(f"cip.{other_chantier.code}"),
            "partner": _email(f"contact.{partner.code}"),
            "partner_other": _email(f"contact.{other.code}"),
        }
        ids = dict(
            s.execute(select(m.StaffUser.email, m.StaffUser.id).where(
                m.StaffUser.email.in_(emails.values()))).all()
        )  # fmt: skip
        assert len(ids) == len(emails), "a demo account is missing from the seed"
        return World(
            db=db, settings=settings, emails=emails, target_id=target.id,
            partner_id=partner.id, offer_id=offer_id, other_partner_id=other.id,
            identity_last_name=identity.last_name,
            reference=s.get(m.Salarie, target.salarie_id).reference,
            user_ids={k: ids[v] for k, v in emails.items()},
        )  # fmt: skip


def fresh_referral(world: World, *, state: str = "new", territory: str = "paris",
                   domain: str = "logement", skip: set[int] | None = None) -> int:  # fmt: skip
    """An untouched referral of the given kind, never one used by another test."""
    skip = skip or set()
    with unit_of_work(world.db) as s:
        tid = s.scalar(select(m.Territory.id).where(m.Territory.code == territory))
        ids = s.scalars(
            select(m.Referral.id)
            .where(m.Referral.state == state, m.Referral.territory_id == tid,
                   m.Referral.domain == domain, m.Referral.version == 1)
            .order_by(m.Referral.id.desc())
        ).all()  # fmt: skip
    for rid in ids:
        if rid not in skip and rid not in world.used:
            world.used.add(rid)
            return rid
    raise AssertionError("no fresh referral left in the seed")


def waitlist_some(world: World, n: int = 6) -> list[int]:
    """Take and waitlist up to ``n`` fresh Paris logement referrals on a pool their offers
    feed (through the door: ``tests.support.situations.waitlisted_for``)."""
    from tests.support.situations import NoSituation, waitlisted_for

    done: list[int] = []
    for _ in range(n):
        try:
            done.append(waitlisted_for(world)[0])
        except NoSituation:
            break
    return done


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def login(client, email: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    """Log a TestClient in through the real form; returns the final response."""
    page = client.get("/connexion")
    return client.post(
        "/connexion",
        data={"csrf_token": csrf_of(page.text), "email": email, "password": password,
              "suivant": "/file"},
        follow_redirects=False,
    )  # fmt: skip


def direct_offer_id(world: World, territory: str = "paris") -> int:
    """An offer a referral of ``territory`` may be sent to directly (not a counted pool, its
    partner covering the territory): the only kind ``refer`` accepts."""
    with unit_of_work(world.db) as s:
        for offer, partner in s.execute(select(m.Offer, m.Partner).join(m.Partner)
                                        .order_by(m.Offer.id)).all():  # fmt: skip
            if not offer.slot_based and (partner.coverage is None or territory in partner.coverage):
                return offer.id
    raise AssertionError("no direct offer in the seed")


def world_per_database(request, prepare=None):  # type: ignore[no-untyped-def]
    """Body of a module-scoped fixture parametrised by database kind: an emptied database,
    a seeded world with its app (``world.app``), ``prepare(db)`` run before the app is built;
    emptied again afterwards."""
    from tests.conftest import _empty
    from web.app import create_app

    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    db = Database(url)
    _empty(db)
    world = build_world(db)
    if prepare is not None:
        prepare(db)
    world.app = create_app(world.settings, db, world.clock)  # type: ignore[attr-defined]
    yield world
    _empty(db)
    db.dispose()

"""Partner mail, calmer: one digest per contact and day, nothing for an ended orientation, and
the team really told when a partner answers (issue #13, item 5).

Every scenario walks real referrals through the one door (``transition``), writes the real
outbox rows, folds the digests and drains them into a real SMTP server on loopback, on SQLite
and on PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import html
import re
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from engine.deadlines import write_due_reminders
from engine.domain.clock import Clock
from engine.domain.errors import Refused
from engine.outbox.digest import write_due_digests
from engine.outbox.enqueue import enqueue_many
from engine.outbox.messages import Links, Recipient, partner_orientation, partner_token
from engine.outbox.preferences import get_preferences, set_preferences
from engine.outbox.relay import drain
from engine.referrals.actions import Actor, transition
from engine.store import models as m
from engine.store.db import unit_of_work
from engine.store.settings import Settings
from notifications.render import RenderedMessage
from tests.support.mail_guard import assert_no_sensitive
from tests.web.world import World, build_world, csrf_of
from web.app import create_app

BASE = "http://aiguillage.test"
PLANTED = ["VIH", "addiction", "à la rue", "hébergement d'urgence", "psychiatrique"]


def _world(db) -> World:  # type: ignore[no-untyped-def]
    return build_world(db, base_url=BASE)


def _later(world: World, **delta: float) -> Clock:
    return Clock.fixed(world.clock.now() + timedelta(**delta))


def _settings(world: World, smtp_server) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(database_url=world.db.url, base_url=BASE, smtp_host="127.0.0.1",
                    smtp_port=smtp_server.port, smtp_timeout_s=5.0)  # fmt: skip


def _contact(world: World) -> m.StaffUser:
    with world.db.sessions() as s:
        user = s.get(m.StaffUser, world.user_ids["partner"])
        s.expunge(user)
        return user


def _refer(world: World, n: int, *, clock: Clock | None = None) -> list[int]:
    """Take and refer ``n`` untouched referrals to the world's partner offer, through the door
    (the partner is made national for the test so it covers every territory)."""
    clock = clock or world.clock
    done: list[int] = []
    with unit_of_work(world.db) as s:
        s.get(m.Partner, world.partner_id).coverage = None
        admin = s.scalar(select(m.StaffUser).where(m.StaffUser.role == "national_admin"))
        ids = s.scalars(
            select(m.Referral.id)
            .where(m.Referral.state == "new", m.Referral.version == 1,
                   m.Referral.owner_kind == "officer")
            .order_by(m.Referral.id)
        ).all()  # fmt: skip
        actor = Actor.of(admin)
        for rid in ids:
            if len(done) == n:
                break
            if rid in world.used:
                continue
            world.used.add(rid)
            transition(s, world.settings, rid, "take", actor=actor, clock=clock)
            transition(s, world.settings, rid, "refer", actor=actor, clock=clock,
                       offer_id=world.offer_id)  # fmt: skip
            done.append(rid)
    assert len(done) == n, "the seed has fewer untouched referrals than asked"
    return done


def _rows(world: World, kind: str, **where: object) -> list[m.OutboxMessage]:
    with world.db.sessions() as s:
        q = select(m.OutboxMessage).where(m.OutboxMessage.kind == kind)
        for name, value in where.items():
            q = q.where(getattr(m.OutboxMessage, name) == value)
        rows = s.scalars(q.order_by(m.OutboxMessage.id)).all()
        s.expunge_all()
        return list(rows)


def _mails_to(smtp_server, address: str) -> list:  # type: ignore[no-untyped-def]
    return [msg.message for msg in smtp_server.messages if address in msg.rcpt_tos]


def _rendered(mail) -> RenderedMessage:  # type: ignore[no-untyped-def]
    return RenderedMessage(str(mail["Subject"]), mail.get_body(("plain",)).get_content(),
                           mail.get_body(("html",)).get_content())  # fmt: skip


def _referred_to_partner(world: World) -> int:
    with world.db.sessions() as s:
        offers = select(m.Offer.id).where(m.Offer.partner_id == world.partner_id)
        return s.scalar(
            select(func.count())
            .select_from(m.Referral)
            .where(m.Referral.state == "referred", m.Referral.offer_id.in_(offers))
        )


# --- one digest per contact and day --------------------------------------------------------


def test_673_orientations_in_one_run_reach_the_contact_as_one_digest(db, smtp_server):
    """The defect: a partner contact received 673 separate mails in one run. Now the
    orientations wait in the outbox, and one mail lists them all, once."""
    world = _world(db)
    contact = _contact(world)
    _refer(world, 673)
    waiting = _referred_to_partner(world)
    assert waiting >= 673
    rows = _rows(world, "partner_orientation", recipient_user_id=contact.id)
    assert len(rows) == waiting and {r.delivery for r in rows} == {"digest"}
    settings = _settings(world, smtp_server)
    # Nothing goes out one by one.
    drain(db, settings, clock=_later(world, minutes=5))
    assert _mails_to(smtp_server, contact.email) == []

    assert write_due_digests(db, settings, clock=_later(world, minutes=10)) >= 1
    digests = _rows(world, "partner_digest", recipient_user_id=contact.id)
    assert len(digests) == 1 and digests[0].delivery == "immediate"
    items = digests[0].context["items"]
    assert len(items) == waiting == len({i["action_url"] for i in items})  # one per orientation
    assert {r.status for r in _rows(world, "partner_orientation", recipient_user_id=contact.id)} == {"digested"}  # fmt: skip

    report = drain(db, settings, clock=_later(world, minutes=11))
    assert report.parked == 0
    mails = _mails_to(smtp_server, contact.email)
    assert len(mails) == 1
    mail = _rendered(mails[0])
    assert mail.subject.startswith(f"{waiting} orientations en attente de votre réponse")
    assert mail.text.count(f"{BASE}/partenaire/reponse/") == waiting
    assert "sans compte ni mot de passe" in mail.text and "connectez-vous" not in mail.text
    assert world.identity_last_name not in mail.text and world.identity_last_name not in mail.html
    # The answer links carry signed tokens: 674 random strings hold "vih" or "rue" by chance.
    links = re.compile(re.escape(BASE) + r"/partenaire/reponse/[^\s\"<]+")
    readable = dataclasses.replace(
        mail, text=links.sub("<lien>", mail.text), html=links.sub("<lien>", mail.html)
    )
    assert_no_sensitive(readable, PLANTED)

    # The same day, nothing more; the next run writes no second digest.
    assert write_due_digests(db, settings, clock=_later(world, hours=2)) == 0
    assert len(_rows(world, "partner_digest", recipient_user_id=contact.id)) == 1


def test_a_new_orientation_waits_for_the_next_day_digest_hour(db):
    world = _world(db)
    contact = _contact(world)
    settings = world.settings
    first = _later(world, minutes=1)
    assert write_due_digests(db, settings, clock=first) >= 1  # the target's orientation
    later_today = _later(world, hours=3)
    _refer(world, 2, clock=later_today)
    assert write_due_digests(db, settings, clock=_later(world, hours=4)) == 0
    tomorrow = first.now() + timedelta(days=1)
    at_hour = datetime.combine(tomorrow.date(), datetime.min.time(), tzinfo=tomorrow.tzinfo)
    at_hour += timedelta(hours=settings.digest_hour)
    assert write_due_digests(db, settings, clock=Clock.fixed(at_hour - timedelta(minutes=1))) == 0
    assert write_due_digests(db, settings, clock=Clock.fixed(at_hour + timedelta(minutes=1))) >= 1
    second = _rows(world, "partner_digest", recipient_user_id=contact.id)
    assert len(second) == 2
    assert second[1].idempotency_key == f"partner_digest:{contact.id}:{tomorrow.date()}"
    assert len(second[1].context["items"]) == 2


def test_a_contact_who_chose_immediate_gets_each_orientation_at_once(db, smtp_server):
    world = _world(db)
    contact = _contact(world)
    with unit_of_work(db) as s:
        user = s.get(m.StaffUser, contact.id)
        modes = {row.kind: row.modes for row in get_preferences(s, user)}
        assert modes == {"partner_orientation": ("immediate", "digest"),
                         "partner_reminder": ("immediate", "digest")}  # fmt: skip
        with pytest.raises(Refused, match="ne peut pas être désactivé"):
            set_preferences(s, user, {"partner_orientation": "off"}, now=world.clock.now())
    with unit_of_work(db) as s:
        user = s.get(m.StaffUser, contact.id)
        set_preferences(s, user, {"partner_orientation": "immediate"}, now=world.clock.now())
    (rid,) = _refer(world, 1)
    (row,) = _rows(world, "partner_orientation", referral_id=rid)
    assert row.delivery == "immediate" and row.recipient_user_id == contact.id
    report = drain(db, _settings(world, smtp_server), clock=_later(world, minutes=1))
    assert report.sent >= 1
    mails = _mails_to(smtp_server, contact.email)
    assert len(mails) == 1 and "vous adresse une orientation" in str(mails[0]["Subject"])
    text = mails[0].get_body(("plain",)).get_content()
    assert "aucun compte ni mot de passe" in text and "connectez-vous" not in text


# --- nothing for an orientation that ended before sending -------------------------------------


def _end(world: World, rid: int, action: str = "cancel") -> None:
    with unit_of_work(world.db) as s:
        admin = s.scalar(select(m.StaffUser).where(m.StaffUser.role == "national_admin"))
        transition(s, world.settings, rid, action, actor=Actor.of(admin), clock=world.clock,
                   **({"reason": "met_elsewhere"} if action == "refuse" else {}))  # fmt: skip


def test_the_relay_cancels_an_orientation_mail_whose_orientation_ended(db, smtp_server):
    world = _world(db)
    contact = _contact(world)
    with unit_of_work(db) as s:
        s.add(m.NotificationPreference(user_id=contact.id, kind="partner_orientation",
                                       mode="immediate"))  # fmt: skip
    kept, ended = _refer(world, 2)
    _end(world, ended, "refuse")
    report = drain(db, _settings(world, smtp_server), clock=_later(world, minutes=1))
    assert report.cancelled == 1
    (row,) = _rows(world, "partner_orientation", referral_id=ended)
    assert row.status == "cancelled" and "terminée avant l'envoi (refusée)" in row.last_error
    assert _rows(world, "partner_orientation", referral_id=kept)[0].status == "sent"
    (mail,) = _mails_to(smtp_server, contact.email)  # the ended one was never mailed
    assert _reference(world, kept) in str(mail["Subject"])


def _reference(world: World, rid: int) -> str:
    with world.db.sessions() as s:
        return s.scalar(
            select(m.Salarie.reference).join(m.Referral, m.Referral.salarie_id == m.Salarie.id)
            .where(m.Referral.id == rid)
        )  # fmt: skip


def test_the_digest_leaves_out_ended_orientations_and_sends_nothing_when_all_ended(db):
    world = _world(db)
    contact = _contact(world)
    settings = world.settings
    # The world's own orientation and those intake routed straight to the partner: answered
    # elsewhere before the digest.
    with world.db.sessions() as s:
        offers = select(m.Offer.id).where(m.Offer.partner_id == world.partner_id)
        already = s.scalars(select(m.Referral.id).where(
            m.Referral.state == "referred", m.Referral.offer_id.in_(offers))).all()  # fmt: skip
    for rid in already:
        _end(world, rid)
    kept, ended = _refer(world, 2)
    _end(world, ended)
    assert write_due_digests(db, settings, clock=_later(world, minutes=1)) >= 1
    (digest,) = _rows(world, "partner_digest", recipient_user_id=contact.id)
    assert [i["reference"] for i in digest.context["items"]] == [_reference(world, kept)]
    statuses = {r.referral_id: r.status for r in _rows(world, "partner_orientation")
                if r.recipient_user_id == contact.id}  # fmt: skip
    assert statuses[kept] == "digested" and statuses[ended] == "cancelled"
    assert all(statuses[rid] == "cancelled" for rid in already)

    # Next day: one more orientation, ended before the digest hour: no digest at all.
    (late,) = _refer(world, 1, clock=_later(world, hours=5))
    _end(world, late)
    assert write_due_digests(db, settings, clock=_later(world, days=1, hours=1)) == 0
    assert len(_rows(world, "partner_digest", recipient_user_id=contact.id)) == 1
    assert _rows(world, "partner_orientation", referral_id=late)[0].status == "cancelled"


def test_rows_written_before_the_referral_column_are_checked_by_their_key(db, smtp_server):
    world = _world(db)
    (rid,) = _refer(world, 1)
    _end(world, rid)
    links = Links(BASE)
    token = partner_token(world.settings, referral_id=rid, partner_id=world.partner_id,
                          now=world.clock.now())  # fmt: skip
    msg = partner_orientation(links, Recipient(None, "", "ancien@example.org"), referral_id=rid,
                              version=9, reminders_sent=0, partner_name="Siao Paris",
                              reference=_reference(world, rid), territory="Convergence Paris",
                              token=token, expires_on=world.clock.today())  # fmt: skip
    msg.pop("referral_id")
    msg["mode"] = "immediate"
    with unit_of_work(db) as s:
        assert enqueue_many(s, [msg], base_url=BASE, now=world.clock.now()) == 1
    report = drain(db, _settings(world, smtp_server), clock=_later(world, minutes=1))
    assert report.cancelled >= 1 and _mails_to(smtp_server, "ancien@example.org") == []


# --- a partner reached only through the directory's address ----------------------------------


def test_a_partner_without_contact_account_gets_the_digest_at_its_directory_address(
    db, smtp_server
):
    world = _world(db)
    with unit_of_work(db) as s:
        s.execute(update(m.StaffUser).where(m.StaffUser.partner_id == world.partner_id)
                  .values(active=False))  # fmt: skip
        address = s.get(m.Partner, world.partner_id).contact_email
    assert address
    _refer(world, 3)
    rows = [r for r in _rows(world, "partner_orientation") if r.to_address == address]
    assert len(rows) == 3 and all(r.recipient_user_id is None for r in rows)
    settings = _settings(world, smtp_server)
    assert write_due_digests(db, settings, clock=_later(world, minutes=1)) >= 1
    (digest,) = [d for d in _rows(world, "partner_digest") if d.to_address == address]
    assert address not in digest.idempotency_key and len(digest.context["items"]) == 3
    drain(db, settings, clock=_later(world, minutes=2))
    (mail,) = _mails_to(smtp_server, address)
    text = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.startswith("Bonjour,\n") and "3 orientations" in str(mail["Subject"])
    assert write_due_digests(db, settings, clock=_later(world, hours=1)) == 0


def test_reminders_reach_a_partner_without_contact_account_at_its_directory_address(db):
    """Reminders follow the same rule as the first mail: the partner's active contacts,
    else the directory's address — a partner without an account is reminded too."""
    world = _world(db)
    with unit_of_work(db) as s:
        s.execute(update(m.StaffUser).where(m.StaffUser.partner_id == world.partner_id)
                  .values(active=False))  # fmt: skip
        address = s.get(m.Partner, world.partner_id).contact_email
        sent = s.get(m.Referral, world.target_id).state_changed_at
    assert address
    days = world.settings.partner_reminder_every_days
    clock = Clock.fixed(sent + timedelta(days=days, hours=1))
    counts = write_due_reminders(db, world.settings, clock=clock)
    assert counts
    rows = [r for r in _rows(world, "partner_reminder") if r.to_address == address]
    assert len(rows) == 1 and rows[0].recipient_user_id is None
    assert address not in rows[0].idempotency_key


# --- the team told when the partner answers ---------------------------------------------------


def _answer_link(world: World, rid: int) -> str:
    token = partner_token(world.settings, referral_id=rid, partner_id=world.partner_id,
                          now=world.clock.now())  # fmt: skip
    return f"/partenaire/reponse/{token}"


def _answer(client: TestClient, url: str, decision: str) -> None:
    page = client.get(url)
    assert page.status_code == 200
    data = {"csrf_token": csrf_of(page.text), "decision": decision}
    if decision == "refuser":
        data["reason"] = "no_capacity"
    assert client.post(url, data=data, follow_redirects=False).status_code == 303


def _owner(world: World, rid: int) -> m.StaffUser:
    with world.db.sessions() as s:
        user = s.get(m.StaffUser, s.get(m.Referral, rid).owner_user_id)
        s.expunge(user)
        return user


def test_a_partner_answer_reaches_the_owner_and_the_page_says_so(db, smtp_server):
    world = _world(db)
    app = create_app(world.settings, world.db, world.clock)
    client = TestClient(app)
    rid = world.target_id
    owner = _owner(world, rid)
    url = _answer_link(world, rid)
    page = client.get(url).text
    assert owner.display_name in page and "Prochaine étape" in page
    assert "aucun compte ni mot de passe" in page and "informé" not in page

    _answer(client, url, "accepter")
    (row,) = _rows(world, "partner_answered", referral_id=rid)
    assert row.recipient_user_id == owner.id and row.delivery == "digest"
    assert (
        row.context["answer"] == "acceptée" and row.context["url"] == f"{BASE}/orientations/{rid}"
    )
    page = client.get(url).text
    assert "Prochaine étape" in page and owner.display_name in page and owner.email in page
    assert "en est informé·e dans son récapitulatif quotidien" in page
    # The owner's digest carries it, with a link to the case page.
    settings = _settings(world, smtp_server)
    write_due_digests(db, settings, clock=_later(world, minutes=1))
    drain(db, settings, clock=_later(world, minutes=2))
    (mail,) = _mails_to(smtp_server, owner.email)
    text = mail.get_body(("plain",)).get_content()
    assert "Réponse d'un partenaire (1)" in text and f"{BASE}/orientations/{rid}" in text


def test_an_owner_who_chose_immediate_gets_the_refusal_at_once(db, smtp_server):
    world = _world(db)
    client = TestClient(create_app(world.settings, world.db, world.clock))
    (rid,) = _refer(world, 1)
    with unit_of_work(db) as s:  # the referral's owner: an officer of its territory
        owner_id = s.get(m.Referral, rid).owner_user_id
        set_preferences(s, s.get(m.StaffUser, owner_id), {"partner_answered": "immediate"},
                        now=world.clock.now())  # fmt: skip
    owner = _owner(world, rid)
    url = _answer_link(world, rid)
    _answer(client, url, "refuser")
    (row,) = _rows(world, "partner_answered", referral_id=rid)
    assert row.delivery == "immediate" and row.context["answer"] == "refusée"
    assert "en est informé·e par courriel" in client.get(url).text
    drain(db, _settings(world, smtp_server), clock=_later(world, minutes=1))
    (mail,) = _mails_to(smtp_server, owner.email)
    assert "a refusé l'orientation" in str(mail["Subject"])
    assert "motif du refus" in mail.get_body(("plain",)).get_content()


def test_no_mail_no_claim_when_the_owner_switched_it_off_or_the_team_refused(db):
    world = _world(db)
    client = TestClient(create_app(world.settings, world.db, world.clock))
    off, by_team = _refer(world, 2)
    with unit_of_work(db) as s:
        owner = s.get(m.StaffUser, s.get(m.Referral, off).owner_user_id)
        set_preferences(s, owner, {"partner_answered": "off"}, now=world.clock.now())
    _answer(client, _answer_link(world, off), "accepter")
    assert _rows(world, "partner_answered", referral_id=off) == []
    page = client.get(_answer_link(world, off)).text
    assert "vous l'avez acceptée" in page and "informé" not in page
    assert "Votre réponse est enregistrée dans le dossier" in page
    _end(world, by_team, "refuse")
    assert _rows(world, "partner_answered", referral_id=by_team) == []
    assert "aucune action n'est attendue" in client.get(_answer_link(world, by_team)).text


def test_the_preferences_page_shows_each_role_its_own_kinds(db):
    world = _world(db)
    client = TestClient(create_app(world.settings, world.db, world.clock))
    from tests.web.world import login

    assert login(client, world.emails["partner"]).status_code == 303
    page = html.unescape(client.get("/preferences").text)
    assert "Nouvelle orientation vers ma structure" in page and "Qualification" not in page
    assert 'value="off"' not in page and "récapitulatif quotidien" in page
    officer = TestClient(create_app(world.settings, world.db, world.clock))
    assert login(officer, world.emails["officer"]).status_code == 303
    page = html.unescape(officer.get("/preferences").text)
    assert (
        "Réponse d'un partenaire" in page and "Nouvelle orientation vers ma structure" not in page
    )

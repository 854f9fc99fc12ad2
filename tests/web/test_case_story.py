"""The case view tells the orientation's story in French, asks before destroying it, and gives
the chantier's CIP/ESP a voice: notes, reorientation requests, new freins (issue #13, item 3).

Every test writes, so each runs on SQLite and PostgreSQL (``world_db``)."""

from __future__ import annotations

import html
import json
import logging
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from engine.access.permissions import can
from engine.domain.errors import NotFound, Refused
from engine.intake.freins import add_frein
from engine.intake.run import run_intake
from engine.network.seed import MAIL_DOMAIN
from engine.referrals.actions import Actor, transition
from engine.referrals.case_file import read_case_file
from engine.referrals.notes import add_note, list_notes
from engine.store import models as m
from engine.store.db import unit_of_work
from matching.rules import load_rules
from partners.taxonomy import THEMATIQUES, label_of
from tests.support.situations import referred_to
from tests.web.world import World, csrf_of, fresh_referral, login
from web.app import create_app

# Codes a reader must never see in the history or the routing reasons.
RAW_CODES = re.compile(
    r"\b(route|take|refer|partner_accept|start|close|transfer|refuse|cancel|waitlist|"
    r"unreachable|resolved|triaging|referred|accepted|in_progress|cancelled|transferred|"
    r"intake|système|sticky|least_loaded|only_officer|officer|coordinator|code)\b"
)


def _client(world: World, role: str) -> TestClient:
    app = getattr(world, "app", None) or create_app(world.settings, world.db, world.clock)
    world.app = app  # type: ignore[attr-defined]
    client = TestClient(app)
    assert login(client, world.emails[role]).status_code == 303
    return client


def _cip_of(world: World, rid: int) -> TestClient:
    """A client logged in as the CIP/ESP of the referral's chantier."""
    with world.db.sessions() as s:
        code = s.get(m.Chantier, s.get(m.Referral, rid).chantier_id).code
    client = TestClient(world.app)  # type: ignore[attr-defined]
    assert login(client, f"cip.{code}@{MAIL_DOMAIN}").status_code == 303
    return client


def _post(client: TestClient, rid: int, path: str = "actions", **data: str):  # type: ignore[no-untyped-def]
    token = csrf_of(client.get(f"/orientations/{rid}").text)
    return client.post(f"/orientations/{rid}/{path}", data={"csrf_token": token, **data},
                       follow_redirects=False)  # fmt: skip


def _text(fragment: str) -> str:
    """What a reader reads: tags (and their class names) stripped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", " ", fragment))


def _section(page: str, heading_id: str) -> str:
    start = page.index(f'id="{heading_id}"')
    return page[start : page.index("</section>", start)]


def _user(world: World, key: str) -> m.StaffUser:
    with world.db.sessions() as s:
        user = s.get(m.StaffUser, world.user_ids[key])
        s.expunge(user)
        return user


def _counts(world: World, rid: int) -> tuple[int, ...]:
    with world.db.sessions() as s:
        ref = s.get(m.Referral, rid)
        return (
            ref.version,
            s.scalar(select(func.count()).select_from(m.ReferralEvent)
                     .where(m.ReferralEvent.referral_id == rid)),
            s.scalar(select(func.count()).select_from(m.OutboxMessage)),
            s.scalar(select(func.count()).select_from(m.Referral)),
            s.scalar(select(func.count()).select_from(m.CaseNote)),
        )  # fmt: skip


# --- the history in words -----------------------------------------------------------------


def test_timeline_says_every_event_in_words_with_names_and_roles(world_db):
    world = world_db
    officer, coordinator = _user(world, "officer"), _user(world, "coordinator")
    partner_contact = _user(world, "partner")
    clock, settings = world.clock, world.settings
    transferred, refused, cancelled = (fresh_referral(world) for _ in range(3))
    linked, _ = referred_to(world)
    with unit_of_work(world.db) as s:
        by_officer, by_partner = Actor.of(officer), Actor.of(partner_contact)
        rid = world.target_id  # route, take, refer already
        transition(s, settings, rid, "partner_accept", actor=by_partner, clock=clock)
        transition(s, settings, rid, "start", actor=by_officer, clock=clock)
        transition(s, settings, rid, "close", actor=by_officer, clock=clock,
                   outcome="resolved", note="Logement trouvé")  # fmt: skip
        transition(s, settings, transferred, "take", actor=by_officer, clock=clock)
        transition(s, settings, transferred, "transfer", actor=by_officer, clock=clock,
                   new_owner_id=coordinator.id)  # fmt: skip
        transition(s, settings, refused, "refuse", actor=by_officer, clock=clock,
                   reason="unreachable")  # fmt: skip
        transition(s, settings, cancelled, "take", actor=by_officer, clock=clock)
        transition(s, settings, cancelled, "cancel", actor=by_officer, clock=clock,
                   note="Frein levé par la famille")  # fmt: skip
        partner = s.get(m.Partner, s.get(m.Referral, linked).offer.partner_id)
        transition(s, settings, linked, "partner_accept", clock=clock,
                   actor=Actor.partner_link(partner.id, partner.name))  # fmt: skip
        offer = s.get(m.Offer, world.offer_id)
        offer_words = f"{s.get(m.Partner, offer.partner_id).name} — {offer.name}"
        successor = s.scalar(
            select(m.Referral.id).where(m.Referral.transferred_from_id == transferred)
        )
        paris = s.scalar(select(m.Territory.name).where(m.Territory.code == "paris"))
        contact_partner = s.get(m.Partner, partner_contact.partner_id).name
    client = _client(world, "coordinator")
    who = f"par {officer.display_name} (chargé·e logement, {paris})"
    expected = {
        rid: ["Orientation automatique à l'arrivée du frein", "Orientation créée et confiée à",
              "Prise en charge", f"Orientée vers {offer_words}", "Acceptée par le partenaire",
              f"par {partner_contact.display_name} (contact partenaire, {contact_partner})",
              "Accompagnement démarré", "Clôturée : frein levé", "Logement trouvé", who],
        transferred: [f"Transférée à {coordinator.display_name} (coordination, {paris})",
                      "Voir la nouvelle orientation"],
        refused: ["Refusée : personne injoignable", who],
        cancelled: ["Annulée", "Frein levé par la famille", who],
        linked: [f"par {partner.name} (partenaire, depuis son lien sécurisé)"],
        successor: ["Reprise d'une orientation transférée", "Voir l'orientation d'origine"],
    }  # fmt: skip
    for referral_id, sentences in expected.items():
        page = client.get(f"/orientations/{referral_id}").text
        timeline = _section(page, "historique")
        said = _text(timeline)
        for sentence in sentences:
            assert sentence in said, (referral_id, sentence, said)
        reasons = _text(_section(page, "pourquoi").split("<table")[0])
        for part in (said, reasons):
            assert "@" not in part
            assert not RAW_CODES.search(part), (referral_id, RAW_CODES.search(part), part)
        assert f"n° {transferred}" not in _text(page)  # no internal id, a link instead
    new_page = client.get(f"/orientations/{successor}").text
    assert f'href="/orientations/{transferred}"' in new_page


def test_routing_reasons_are_sentences_without_internal_ids(world_db):
    world = world_db
    page = _client(world, "officer").get(f"/orientations/{world.target_id}").text
    with world.db.sessions() as s:
        ref = s.get(m.Referral, world.target_id)
        owner = s.get(m.StaffUser, ref.reasons[0]["officer"])
    reasons = _text(_section(page, "pourquoi").split("<table")[0])
    assert f"Confiée à {owner.display_name} (chargé·e logement" in reasons
    assert "Détail des règles appliquées" in reasons
    assert f" {owner.id} " not in reasons and " : sticky" not in reasons
    assert not RAW_CODES.search(reasons), reasons


def test_version_is_not_shown_but_still_guards_the_forms(world_db):
    world = world_db
    page = _client(world, "officer").get(f"/orientations/{world.target_id}").text
    assert "Version" not in _text(page)
    assert 'name="version" value="' in page


def test_a_transfer_names_the_new_owner_and_links_the_new_referral(world_db):
    world = world_db
    rid = fresh_referral(world)
    colleague_id = None
    with world.db.sessions() as s:
        ref = s.get(m.Referral, rid)
        colleague = s.scalar(
            select(m.StaffUser).where(
                m.StaffUser.role == "officer", m.StaffUser.domain == "logement",
                m.StaffUser.territory_id == ref.territory_id,
                m.StaffUser.id != world.user_ids["officer"], m.StaffUser.active,
            ).order_by(m.StaffUser.id)
        )  # fmt: skip
        colleague_id, colleague_name = colleague.id, colleague.display_name
        paris = s.scalar(select(m.Territory.name).where(m.Territory.id == ref.territory_id))
    officer = _client(world, "officer")
    assert _post(officer, rid, action="take", version="1").status_code == 303
    done = _post(officer, rid, action="transfer", version="2", new_owner_id=str(colleague_id),
                 confirm="1")  # fmt: skip
    assert done.status_code == 303
    with world.db.sessions() as s:
        new_id = s.scalar(select(m.Referral.id).where(m.Referral.transferred_from_id == rid))
    sentence = f"Transférée à {colleague_name} (chargé·e logement, {paris})"
    for role in ("officer", "coordinator"):
        answer = _client(world, role).get(f"/orientations/{rid}")
        assert answer.status_code == 200, (role, answer.text[-3000:])
        page = answer.text
        summary = _text(_section(page, "resume"))
        assert sentence in summary, summary
        assert sentence in _text(_section(page, "historique"))
        assert f'href="/orientations/{new_id}"' in _section(page, "resume")


# --- destructive actions are confirmed ------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "fields", "heading"),
    [
        ("cancel", {}, "Confirmer l'annulation ?"),
        ("refuse", {"reason": "unreachable"}, "Confirmer le refus ?"),
        ("transfer", {"new_owner_id": "coordinator"}, "Confirmer le transfert ?"),
        ("close", {"outcome": "resolved"}, "Confirmer la clôture ?"),
    ],
)
def test_a_destructive_action_is_written_only_once_confirmed(world_db, action, fields, heading):
    world = world_db
    rid = fresh_referral(world)
    officer = _client(world, "officer")
    assert _post(officer, rid, action="take", version="1").status_code == 303
    data = {k: str(world.user_ids[v]) if k == "new_owner_id" else v for k, v in fields.items()}
    before = _counts(world, rid)
    first = _post(officer, rid, action=action, version="2", note="Vu avec la personne", **data)
    assert first.status_code == 200
    said = html.unescape(first.text)
    assert heading in said and "Rien n'a encore été enregistré" in said
    assert _counts(world, rid) == before  # nothing written, no event, no message
    with world.db.sessions() as s:
        assert s.get(m.Referral, rid).state == "triaging"
    form = first.text.split('id="form-confirmer"')[1].split("</form>")[0]
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form))
    assert hidden["confirm"] == "1" and hidden["action"] == action
    hidden = {k: html.unescape(v) for k, v in hidden.items()}
    second = officer.post(f"/orientations/{rid}/actions", data=hidden, follow_redirects=False)
    assert second.status_code == 303
    with world.db.sessions() as s:
        ref = s.get(m.Referral, rid)
        target = {"cancel": "cancelled", "refuse": "refused", "transfer": "transferred",
                  "close": "closed"}[action]  # fmt: skip
        assert ref.state == target and ref.version > 2


def test_an_impossible_destructive_action_is_refused_before_the_confirmation(world_db):
    world = world_db
    rid = fresh_referral(world)
    officer = _client(world, "officer")
    before = _counts(world, rid)
    answer = _post(officer, rid, action="refuse", reason="other", note=" ", version="1")
    assert answer.status_code == 422 and "Confirmer" not in html.unescape(answer.text)
    assert "demande une précision" in html.unescape(answer.text)
    assert _counts(world, rid) == before


# --- waitlist only with a pool --------------------------------------------------------------


def test_waitlist_is_offered_only_when_a_pool_fits(world_db):
    world = world_db
    with_pool = None
    with unit_of_work(world.db) as s:
        admin = s.scalar(select(m.StaffUser).where(m.StaffUser.role == "national_admin"))
        for rid in s.scalars(select(m.Referral.id).where(m.Referral.state == "new")
                             .order_by(m.Referral.id)):  # fmt: skip
            if read_case_file(s, admin, rid, now=world.clock.now()).pools:
                with_pool = rid
                transition(s, world.settings, rid, "take", actor=Actor.of(admin), clock=world.clock)
                break
    assert with_pool is not None, "the seed has no referral fed by a pool"
    admin = _client(world, "admin")
    without = admin.get(f"/orientations/{world.target_id}").text  # referred, no pool
    assert 'id="form-waitlist"' not in without
    assert "Mise en attente de place impossible" in html.unescape(without)
    offered = admin.get(f"/orientations/{with_pool}").text
    assert 'id="form-waitlist"' in offered
    assert "Mise en attente de place impossible" not in html.unescape(offered)


# --- notes ----------------------------------------------------------------------------------


def test_the_cip_writes_a_note_the_officer_reads_and_the_partner_never_sees(world_db, caplog):
    world = world_db
    rid = world.target_id
    body = "Rendez-vous au SIAO le 3 ; la personne souhaite un accompagnement physique."
    cip = _client(world, "cip")
    with world.db.sessions() as s:
        outbox_before = s.scalar(select(func.count()).select_from(m.OutboxMessage))
        chantier = s.get(m.Chantier, s.get(m.Referral, rid).chantier_id).name
    caplog.set_level(logging.DEBUG)
    done = _post(cip, rid, "notes", body=body, kind="note")
    assert done.status_code == 303
    assert body not in caplog.text  # never in logs
    cip_name = _user(world, "cip").display_name
    for role in ("officer", "coordinator", "cip", "admin"):
        notes = _text(_section(_client(world, role).get(f"/orientations/{rid}").text, "notes"))
        assert body in notes and f"{cip_name} (CIP / ESP, {chantier})" in notes, role
    partner = _client(world, "partner")
    assert partner.get(f"/orientations/{rid}").status_code == 200
    assert body not in partner.get(f"/orientations/{rid}").text
    assert 'id="notes"' not in partner.get(f"/orientations/{rid}").text
    assert _post(partner, rid, "notes", body="lu ?").status_code == 404
    for role in ("cip_other", "officer_other_territory", "officer_other_domain"):
        other = _client(world, role)
        assert other.get(f"/orientations/{rid}").status_code == 404
        token = csrf_of(other.get("/preferences").text)
        assert other.post(f"/orientations/{rid}/notes", data={"csrf_token": token, "body": "x"},
                          follow_redirects=False).status_code == 404  # fmt: skip
    with world.db.sessions() as s:
        notes = s.scalars(select(m.CaseNote)).all()
        assert [(n.body, n.author_user_id) for n in notes] == [(body, world.user_ids["cip"])]
        audit = s.scalar(select(m.AuditLog).where(m.AuditLog.action == "add_case_note"))
        assert audit.object_id == str(notes[0].id) and body not in json.dumps(audit.details)
        contexts = s.scalars(select(m.OutboxMessage.context)).all()
        assert len(contexts) == outbox_before > 0
        assert all(body not in json.dumps(c, ensure_ascii=False) for c in contexts)


def test_a_note_with_a_nul_byte_or_over_4000_characters_is_refused(world_db):
    world = world_db
    rid = world.target_id
    cip = _client(world, "cip")
    long_note = _post(cip, rid, "notes", body="n" * 4001)
    assert long_note.status_code == 422
    said = html.unescape(long_note.text)
    assert "Note non enregistrée : la note est trop longue : 4 000 caractères au plus" in said
    assert "n" * 4001 in said  # the typed text is given back
    nul = _post(cip, rid, "notes", body="avant\x00après")
    assert nul.status_code == 422 and "octet nul" in html.unescape(nul.text)
    empty = _post(cip, rid, "notes", body="   ")
    assert empty.status_code == 422 and "la note est vide" in html.unescape(empty.text)
    with unit_of_work(world.db) as s:
        user = s.get(m.StaffUser, world.user_ids["cip"])
        with pytest.raises(Refused, match="octet nul"):
            add_note(s, user, rid, "a\x00b", clock=world.clock)
        with pytest.raises(Refused, match="trop longue"):
            add_note(s, user, rid, "é" * 4001, clock=world.clock)
        assert add_note(s, user, rid, "é" * 4000, clock=world.clock).body == "é" * 4000
    with world.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(m.CaseNote)) == 1


def test_notes_follow_the_readers_scope_across_domains(world_db):
    """A note on the person's health orientation is not read by their housing officer."""
    world = world_db
    with unit_of_work(world.db) as s:
        target = s.get(m.Referral, world.target_id)
        health = s.scalar(select(m.Referral).where(m.Referral.salarie_id == target.salarie_id,
                                                   m.Referral.domain != "logement"))  # fmt: skip
        if health is None:
            pytest.skip("the person has no orientation of another domain")
        cip = s.get(m.StaffUser, world.user_ids["cip"])
        add_note(s, cip, target.id, "note logement", clock=world.clock)
        add_note(s, cip, health.id, "note autre domaine", clock=world.clock)
        officer = s.get(m.StaffUser, world.user_ids["officer"])
        coordinator = s.get(m.StaffUser, world.user_ids["coordinator"])
        partner = s.get(m.StaffUser, world.user_ids["partner"])
        assert [n.body for n in list_notes(s, officer, target)] == ["note logement"]
        assert {n.body for n in list_notes(s, coordinator, target)} == {
            "note logement", "note autre domaine"}  # fmt: skip
        assert list_notes(s, partner, target) == [] and not can(partner, "add_note", target)
        with pytest.raises(NotFound):
            add_note(s, partner, target.id, "lu ?", clock=world.clock)


def test_a_reorientation_request_is_shown_to_the_owner_until_the_referral_moves(world_db):
    world = world_db
    rid = fresh_referral(world)
    officer = _client(world, "officer")
    cip = _cip_of(world, rid)
    with world.db.sessions() as s:
        outbox_before = s.scalar(select(func.count()).select_from(m.OutboxMessage))
    ask = "La personne a trouvé un hébergement : une orientation emploi serait plus utile."
    done = _post(cip, rid, "notes", body=ask, kind="reorientation")
    assert done.status_code == 303
    banner = _text(_section(officer.get(f"/orientations/{rid}").text, "demandes"))
    assert "Demande de réorientation en attente" in banner and ask in banner
    refused = _post(officer, rid, "notes", body="moi aussi", kind="reorientation")
    assert refused.status_code == 403
    assert "CIP / ESP du chantier" in html.unescape(refused.text)
    with world.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(m.OutboxMessage)) == outbox_before
        assert s.scalar(select(m.CaseNote.reorientation_request)) is True
    assert _post(officer, rid, action="take", version="1").status_code == 303
    page = officer.get(f"/orientations/{rid}").text
    assert 'id="demandes"' not in page and ask in html.unescape(page)  # still in the thread


# --- the CIP/ESP adds a frein ---------------------------------------------------------------


def test_the_cip_adds_a_frein_that_the_intake_then_routes(world_db):
    world = world_db
    rid = world.target_id
    with world.db.sessions() as s:
        salarie_id = s.get(m.Referral, rid).salarie_id
        known = set(s.scalars(select(m.Frein.thematique).where(m.Frein.salarie_id == salarie_id)))
    slug = next(t.slug for t in THEMATIQUES.values()
                if t.domain == "emploi" and not t.is_category and t.slug not in known)  # fmt: skip
    cip = _client(world, "cip")
    page = cip.get(f"/orientations/{rid}").text
    assert 'id="form-frein"' in page and f'value="{slug}"' in page
    assert f'href="/salaries/{salarie_id}' in page
    done = _post(cip, rid, "freins", thematique=slug)
    assert done.status_code == 303
    flash = html.unescape(cip.get(done.headers["location"]).text)
    assert f"Frein ajouté : {label_of(slug)}" in flash
    with world.db.sessions() as s:
        frein = s.scalar(select(m.Frein).where(m.Frein.salarie_id == salarie_id,
                                               m.Frein.thematique == slug))  # fmt: skip
        assert frein.status == "open"
        assert frein.domain == load_rules(world.settings.rules_file).domain_of(slug) == "emploi"
        audit = s.scalar(select(m.AuditLog).where(m.AuditLog.action == "add_frein"))
        assert audit.actor_user_id == world.user_ids["cip"] and audit.object_id == str(frein.id)
        frein_id = frein.id
    again = _post(cip, rid, "freins", thematique=slug)
    assert again.status_code == 422
    assert "est déjà enregistré pour cette personne" in html.unescape(again.text)
    unknown = _post(cip, rid, "freins", thematique="sante--inconnue")
    assert unknown.status_code == 422 and "thématique inconnue" in html.unescape(unknown.text)
    for role in ("officer", "partner", "cip_other"):
        client = _client(world, role)
        token = csrf_of(client.get("/preferences").text)
        answer = client.post(f"/orientations/{rid}/freins", follow_redirects=False,
                             data={"csrf_token": token, "thematique": "mobilite"})  # fmt: skip
        assert answer.status_code == 404, role
    report = run_intake(world.db, world.settings, clock=world.clock)
    assert report.routed == 1
    with world.db.sessions() as s:
        routed = s.scalar(select(m.Referral).where(m.Referral.frein_id == frein_id))
        assert routed.domain == "emploi" and routed.salarie_id == salarie_id
    assert f'href="/orientations/{routed.id}"' in cip.get(f"/orientations/{rid}").text


def test_add_frein_checks_the_user_and_the_person(world_db):
    world = world_db
    rules = load_rules(world.settings.rules_file)
    with unit_of_work(world.db) as s:
        person = s.get(m.Referral, world.target_id).salarie_id
        known = set(s.scalars(select(m.Frein.thematique).where(m.Frein.salarie_id == person)))
        slug = next(t.slug for t in THEMATIQUES.values()
                    if t.domain == "sante" and t.slug not in known)  # fmt: skip
        officer = s.get(m.StaffUser, world.user_ids["officer"])
        coordinator = s.get(m.StaffUser, world.user_ids["coordinator"])
        with pytest.raises(NotFound):
            add_frein(s, officer, person, slug, clock=world.clock, rules=rules)
        frein = add_frein(s, coordinator, person, f" {slug.upper()} ", clock=world.clock,
                          rules=rules)  # fmt: skip
        assert (frein.thematique, frein.domain) == (slug, "sante")
        s.get(m.Salarie, person).exit_date = world.clock.today()
        with pytest.raises(Refused, match="sortie du programme"):
            add_frein(s, coordinator, person, "numerique", clock=world.clock, rules=rules)

"""Queue, bulk actions, partner link, allocation review, pools, preferences, access log, a11y."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from engine.access.tokens import make_partner_token
from engine.store import models as m
from engine.store.db import unit_of_work
from tests.web.world import csrf_of, fresh_referral, waitlist_some

IDS = re.compile(r'href="/orientations/(\d+)"')


def test_queue_filters_sort_and_keyset_pages(clients, world):
    client = clients["admin"]
    seen: list[int] = []
    url = "/file?domaine=logement&tri=due"
    while url:
        page = client.get(url).text
        seen += [int(i) for i in IDS.findall(page)]
        nxt = re.search(r'href="(/file\?[^"]+)" rel="next"', page)
        url = html.unescape(nxt.group(1)) if nxt else ""
    with unit_of_work(world.db) as s:
        expected = s.scalars(
            select(m.Referral.id).where(m.Referral.domain == "logement",
                                        m.Referral.state.in_(("new", "triaging", "referred", "waitlisted", "proposed", "accepted", "in_progress")))
            .order_by(m.Referral.due_at, m.Referral.id)
        ).all()  # fmt: skip
    assert seen == list(expected)


def test_queue_priority_order_and_overdue_badge(clients, world):
    rid = fresh_referral(world, domain="sante")
    with unit_of_work(world.db) as s:
        s.get(m.Referral, rid).due_at = world.clock.now() - timedelta(days=3)
    page = clients["admin"].get("/file?domaine=sante&territoire=paris").text
    ids = [int(i) for i in IDS.findall(page)]
    with unit_of_work(world.db) as s:
        prio = dict(s.execute(select(m.Referral.id, m.Referral.priority)
                              .where(m.Referral.id.in_(ids))).all())  # fmt: skip
    assert [prio[i] for i in ids] == sorted((prio[i] for i in ids), reverse=True)
    row = page.split(f'href="/orientations/{rid}"', 1)[1].split("</tr>", 1)[0]
    assert "En retard" in row


def test_bulk_take_and_assign(clients, world):
    a, b = fresh_referral(world), fresh_referral(world)
    client = clients["officer"]
    token = csrf_of(client.get("/file").text)
    done = client.post("/file/actions", data={"csrf_token": token, "action": "take",
                       "selection": [f"{a}:1", f"{b}:7"]}, follow_redirects=False)  # fmt: skip
    assert done.status_code == 303
    assert "1 orientation prise en charge" in html.unescape(
        client.get(done.headers["location"]).text
    )
    with unit_of_work(world.db) as s:
        assert s.get(m.Referral, a).state == "triaging"
        assert s.get(m.Referral, b).state == "new"  # stale version: untouched
    c = fresh_referral(world)
    coord = clients["coordinator"]
    token = csrf_of(coord.get("/file").text)
    # Another logement chargé·e of Paris when the seed has one, else the same one: an
    # assignee shares the referral's territory and domain.
    with unit_of_work(world.db) as s:
        assignee = s.scalars(select(m.StaffUser.id).join(m.Territory).where(
            m.StaffUser.role == "officer", m.StaffUser.domain == "logement",
            m.Territory.code == "paris").order_by(m.StaffUser.id.desc())).first()  # fmt: skip
    coord.post("/file/actions", data={"csrf_token": token, "action": "assign",
               "assignee": str(assignee), "selection": [f"{c}:1"]})  # fmt: skip
    with unit_of_work(world.db) as s:
        ref = s.get(m.Referral, c)
        assert ref.owner_user_id == assignee and ref.state == "new"
    # an officer cannot assign
    d = fresh_referral(world)
    token = csrf_of(client.get("/file").text)
    other = world.user_ids["officer_other_domain"]
    client.post("/file/actions", data={"csrf_token": token, "action": "assign",
                "assignee": str(other), "selection": [f"{d}:1"]})  # fmt: skip
    with unit_of_work(world.db) as s:
        assert s.get(m.Referral, d).owner_user_id != other


def _partner_token(world, rid, partner_id):
    return make_partner_token(world.settings.secret_key.get_secret_value(), referral_id=rid,
                              partner_id=partner_id, now=world.clock.now())  # fmt: skip


def _referred(world, clients):
    rid = fresh_referral(world)
    client = clients["officer"]
    token = csrf_of(client.get(f"/orientations/{rid}").text)
    client.post(
        f"/orientations/{rid}/actions", data={"csrf_token": token, "action": "take", "version": "1"}
    )
    client.post(f"/orientations/{rid}/actions", data={"csrf_token": token, "action": "refer",
                "version": "2", "offer_id": str(world.offer_id)})  # fmt: skip
    with unit_of_work(world.db) as s:
        assert s.get(m.Referral, rid).state == "referred"
    return rid


def test_partner_link_accept(app, clients, world):
    rid = _referred(world, clients)
    anonymous = TestClient(app)
    url = f"/partenaire/reponse/{_partner_token(world, rid, world.partner_id)}"
    page = anonymous.get(url)
    assert page.status_code == 200
    assert world.identity_last_name not in page.text
    with unit_of_work(world.db) as s:
        ref = s.get(m.Referral, rid)
        assert s.get(m.Salarie, ref.salarie_id).reference in page.text
    assert anonymous.post(url, data={"decision": "accepter"}).status_code == 403
    done = anonymous.post(url, data={"csrf_token": csrf_of(page.text), "decision": "accepter",
                                     "version": "3"}, follow_redirects=False)  # fmt: skip
    assert done.status_code == 303
    with unit_of_work(world.db) as s:
        assert s.get(m.Referral, rid).state == "accepted"
        event = s.scalars(select(m.ReferralEvent).where(m.ReferralEvent.referral_id == rid)
                          .order_by(m.ReferralEvent.id.desc())).first()  # fmt: skip
        assert event.actor_user_id is None and event.actor_label.endswith("(lien signé)")
        assert event.actor_label.startswith("partenaire : ")
    assert "déjà reçu une réponse" in html.unescape(anonymous.get(url).text)


def test_partner_link_refuse_and_bad_links(app, clients, world):
    rid = _referred(world, clients)
    anonymous = TestClient(app)
    url = f"/partenaire/reponse/{_partner_token(world, rid, world.partner_id)}"
    token = csrf_of(anonymous.get(url).text)
    missing_note = anonymous.post(url, data={"csrf_token": token, "decision": "refuser",
                                             "reason": "other", "note": ""})  # fmt: skip
    assert missing_note.status_code == 422
    anonymous.post(url, data={"csrf_token": token, "decision": "refuser", "reason": "no_capacity"})
    with unit_of_work(world.db) as s:
        ref = s.get(m.Referral, rid)
        assert (ref.state, ref.refusal_reason) == ("refused", "no_capacity")
    wrong_partner = anonymous.get(
        f"/partenaire/reponse/{_partner_token(world, rid, world.other_partner_id)}"
    )
    assert wrong_partner.status_code == 404
    forged = anonymous.get(url[:-3] + "abc")
    assert forged.status_code == 404 and "pas valide" in forged.text


def test_allocation_review_validate_and_decline(clients, world):
    allocation = pytest.importorskip("engine.allocation.run")
    waitlist_some(world, 10)
    # Ordinary proposals here (commissions have their own tests); the world is shared, so
    # its commission pools are restored right after the run.
    with unit_of_work(world.db) as s:
        commissions = s.scalars(select(m.SlotPool.id).where(m.SlotPool.commission)).all()
        s.execute(update(m.SlotPool).values(commission=False))
    try:
        report = allocation.run_allocation(world.db, world.settings, clock=world.clock)
    finally:
        with unit_of_work(world.db) as s:
            s.execute(
                update(m.SlotPool).where(m.SlotPool.id.in_(commissions)).values(commission=True)
            )
    assert sum(report.proposals_by_pool.values()) >= 2
    with unit_of_work(world.db) as s:
        props = s.execute(
            select(m.AllocationProposal.id, m.AllocationProposal.version, m.Referral.territory_id)
            .join(m.Referral, m.Referral.id == m.AllocationProposal.referral_id)
            .where(
                m.AllocationProposal.run_id == report.run_id,
                m.AllocationProposal.rank.is_(None),  # a commission's ranks are decided elsewhere
            )
            .order_by(m.AllocationProposal.id)
        ).all()  # fmt: skip
        paris = s.scalar(select(m.Territory.id).where(m.Territory.code == "paris"))
    mine = [p for p in props if p[2] == paris]
    assert len(mine) >= 2
    coord = clients["coordinator"]
    page = coord.get("/attributions").text
    assert f'id="proposition-{mine[0][0]}"' in page and "Détails techniques" in page
    other = clients["coordinator_other"]
    assert f'id="proposition-{mine[0][0]}"' not in other.get("/attributions").text
    other_token = csrf_of(other.get("/attributions").text)
    assert other.post(f"/attributions/{mine[0][0]}/valider",
                      data={"csrf_token": other_token, "version": str(mine[0][1])}).status_code == 404  # fmt: skip
    token = csrf_of(page)
    ok = coord.post(f"/attributions/{mine[0][0]}/valider",
                    data={"csrf_token": token, "version": str(mine[0][1])}, follow_redirects=False)  # fmt: skip
    assert ok.status_code == 303
    declined = coord.post(f"/attributions/{mine[1][0]}/decliner",
                          data={"csrf_token": token, "version": str(mine[1][1]),
                                "reason": "met_elsewhere"}, follow_redirects=False)  # fmt: skip
    assert declined.status_code == 303
    with unit_of_work(world.db) as s:
        assert s.get(m.AllocationProposal, mine[0][0]).status == "validated"
        assert s.get(m.AllocationProposal, mine[1][0]).status == "declined"
    before = len(props)
    dry = coord.post("/attributions/simulation", data={"csrf_token": token})
    assert dry.status_code == 200 and "Résultat de la simulation" in html.unescape(dry.text)
    with unit_of_work(world.db) as s:
        total = s.scalar(select(m.AllocationProposal.id).order_by(m.AllocationProposal.id.desc()))
        assert (
            len(
                s.scalars(
                    select(m.AllocationProposal.id).where(
                        m.AllocationProposal.run_id == report.run_id
                    )
                ).all()
            )
            == before
        )
        assert total == max(p[0] for p in props)  # a dry run writes no proposal


def test_pools_page_counts(clients, world):
    page = clients["coordinator"].get("/places").text
    assert "Capacité" in page and "En attente" in page
    assert "(charente)" not in page  # a pool reserved to another territory is not listed


def test_preferences_critical_cannot_be_off(clients, world):
    client = clients["officer"]
    page = client.get("/preferences").text
    assert 'id="triage_overdue-off"' not in page and 'id="new_referrals-off"' in page
    token = csrf_of(page)
    bad = client.post("/preferences", data={"csrf_token": token, "mode_triage_overdue": "off"})
    assert bad.status_code == 422 and "ne peut pas être désactivé" in html.unescape(bad.text)
    ok = client.post("/preferences", data={"csrf_token": token, "mode_new_referrals": "off",
                     "mode_triage_overdue": "digest"}, follow_redirects=False)  # fmt: skip
    assert ok.status_code == 303
    with unit_of_work(world.db) as s:
        modes = dict(s.execute(select(m.NotificationPreference.kind, m.NotificationPreference.mode)
                               .where(m.NotificationPreference.user_id == world.user_ids["officer"])).all())  # fmt: skip
    assert modes == {"new_referrals": "off", "triage_overdue": "digest"}


def test_access_log_page_lists_reads(clients, world):
    clients["cip"].get(f"/orientations/{world.target_id}")
    page = clients["admin"].get("/journal-acces").text
    with unit_of_work(world.db) as s:
        name = s.get(m.StaffUser, world.user_ids["cip"]).display_name
    assert html.escape(name) in page and world.reference in page
    assert world.emails["cip"] not in page


class _Audit(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.h1 = 0
        self.lang = None
        self.labels: set[str] = set()
        self.inputs: list[str] = []
        self.skip = False

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        if tag == "h1":
            self.h1 += 1
        if tag == "label" and a.get("for"):
            self.labels.add(a["for"])
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.inputs.append(a.get("id") or "")
        if tag == "a" and a.get("href") == "#contenu":
            self.skip = True


@pytest.mark.parametrize("role", ["admin", "coordinator", "officer", "cip", "partner"])
@pytest.mark.parametrize("path", ["/file", "/orientations/{t}", "/attributions", "/places",
                                  "/partenaires", "/preferences", "/journal-acces", "/connexion"])  # fmt: skip
def test_pages_are_accessible(clients, world, role, path):
    """lang="fr", a skip link, exactly one h1, and a label for every visible input."""
    response = clients[role].get(path.format(t=world.target_id))
    audit = _Audit()
    audit.feed(response.text)
    assert audit.lang == "fr" and audit.skip and audit.h1 == 1
    unlabelled = [i for i in audit.inputs if not i or i not in audit.labels]
    assert unlabelled == []


def test_static_assets_are_local(clients):
    page = clients["officer"].get("/file").text
    assert (
        "http://" not in page.split("<body", 1)[0] and "https://" not in page.split("<body", 1)[0]
    )
    js = clients["anonymous"].get("/static/htmx.min.js")
    assert js.status_code == 200 and "htmx" in js.text[:200]

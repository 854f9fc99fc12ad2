"""The home page of each role ("Tableau de bord"), on SQLite and PostgreSQL.

A seeded network plus hand-built situations — answers received 1, 2 and 20 days ago, a triage
and a partner answer overdue, a place validated, a person waiting, a follow-up due, and the
same in Isère and in the emploi domain — then each role's page is read and every figure
compared with a count made here by plain Python over all the rows (the scope rules written
out by hand), every link followed to the queue whose total must be the same figure, and the
other territories' and domains' references looked for in vain.
"""

from __future__ import annotations

import html
import re
import statistics
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from engine.allocation.review import pools_overview
from engine.allocation.run import validate_proposal
from engine.domain.clock import PARIS, Clock, as_utc
from engine.domain.lifecycle import OPEN_STATES
from engine.network.seed import MAIL_DOMAIN
from engine.referrals.actions import Actor, transition
from engine.referrals.case_file import read_case_file
from engine.store import models as m
from engine.store.db import unit_of_work
from matching.grid import add_months
from tests.support.situations import _fresh, proposed, waitlisted_for
from tests.web.world import PASSWORD, World, csrf_of, login, world_per_database

DEADLINE_STATES = ("new", "triaging", "referred")
NUMBER = r"[\d\u202f]+"
CAPTION = re.compile(rf"<caption>(?:{NUMBER}–{NUMBER} sur )?({NUMBER}) orientations?</caption>")


# --- the world: seeded, then hand-built situations -------------------------------------------


def _user(s, world: World, key: str) -> m.StaffUser:  # type: ignore[no-untyped-def]
    return s.get(m.StaffUser, world.user_ids[key])


def _referred(world: World, at: datetime, *, territory: str = "paris", domain: str = "logement",
              by: str | None = "officer") -> int:  # fmt: skip
    """A fresh referral taken and sent to a partner at ``at`` (by the chargée ``by``, so that
    they own it; by the national team for another territory)."""
    clock = Clock.fixed(at)
    for rid in _fresh(world, territory=territory, domain=domain):
        with unit_of_work(world.db) as s:
            actor_user = _user(s, world, by or "admin")
            case = read_case_file(s, actor_user, rid, now=at)
            offers = [o for o in case.offers if not o.slot_based] if case else []
            if not offers:
                continue
            world.used.add(rid)
            actor = Actor.of(actor_user)
            transition(s, world.settings, rid, "take", actor=actor, clock=clock)
            transition(s, world.settings, rid, "refer", actor=actor, clock=clock,
                       offer_id=offers[0].id)  # fmt: skip
            return rid
    raise AssertionError(f"no fresh {territory} {domain} referral to refer")


def _answer(world: World, rid: int, at: datetime, *, accept: bool) -> None:
    """The partner's contact answers at ``at``."""
    with unit_of_work(world.db) as s:
        ref = s.get(m.Referral, rid)
        contact = s.scalar(
            select(m.StaffUser).where(m.StaffUser.role == "partner_contact",
                                      m.StaffUser.partner_id == ref.offer.partner_id)
            .order_by(m.StaffUser.id)
        )  # fmt: skip
        assert contact is not None, "the seed has no contact for this partner"
        action, reason = ("partner_accept", None) if accept else ("refuse", "no_capacity")
        transition(s, world.settings, rid, action, actor=Actor.of(contact), clock=Clock.fixed(at),
                   reason=reason)  # fmt: skip


def _overdue_new(world: World, *, territory: str, domain: str, owner: str | None) -> int:
    """A fresh new referral (owned by ``owner`` when given) whose triage deadline passed."""
    rid = next(iter(_fresh(world, territory=territory, domain=domain)))
    world.used.add(rid)
    with unit_of_work(world.db) as s:
        ref = s.get(m.Referral, rid)
        if owner is not None:
            ref.owner_user_id = world.user_ids[owner]
        ref.due_at = world.clock.now() - timedelta(hours=3)
    return rid


def _situations(world: World) -> dict[str, int]:
    now = world.clock.now()
    day = timedelta(days=1)
    made = {
        "accepted_recent": _referred(world, now - 3 * day),
        "declined_recent": _referred(world, now - 6 * day),
        "accepted_old": _referred(world, now - 30 * day),
        "referred_late": _referred(world, now - 12 * day),
        "isere_answer": _referred(world, now - 5 * day, territory="isere", by=None),
    }
    _answer(world, made["accepted_recent"], now - day, accept=True)
    _answer(world, made["declined_recent"], now - 2 * day, accept=False)
    _answer(world, made["accepted_old"], now - 20 * day, accept=True)
    _answer(world, made["isere_answer"], now - day, accept=True)
    with unit_of_work(world.db) as s:  # the partner's answer deadline passed too
        s.get(m.Referral, made["referred_late"]).due_at = now - 2 * day
        s.get(m.Referral, world.target_id).due_at = now - day
    made["triage_late"] = _overdue_new(world, territory="paris", domain="logement",
                                       owner="officer")  # fmt: skip
    made["isere_late"] = _overdue_new(world, territory="isere", domain="logement", owner=None)
    made["emploi_late"] = _overdue_new(world, territory="paris", domain="emploi", owner=None)
    # a place validated this year, then a person still waiting (after the allocation run)
    proposal_id, placed, version = proposed(world)
    with unit_of_work(world.db) as s:
        validate_proposal(s, world.settings, proposal_id, actor=Actor.of(_user(s, world, "admin")),
                          clock=world.clock, expected_version=version)  # fmt: skip
    made["placed"] = placed
    made["waiting"] = waitlisted_for(world)[0]
    # a CVG salarié·e of the CIP's chantier left 3 months and 5 days ago: the 3-month
    # follow-up is due; another's was recorded already
    today = world.clock.today()
    with unit_of_work(world.db) as s:
        chantier = s.get(m.Referral, world.target_id).chantier_id
        people = s.scalars(select(m.Salarie).where(m.Salarie.chantier_id == chantier)
                           .order_by(m.Salarie.id)).all()  # fmt: skip
        assert len(people) >= 2, "the CIP's chantier has fewer than two salarié·es"
        for person in people[:2]:
            person.programme = "cvg"
            person.exit_date = add_months(today - timedelta(days=5), -3)
            person.entry_date = min(person.entry_date, person.exit_date - timedelta(days=30))
        s.add(m.FollowUp(salarie_id=people[1].id, months=3, situation="emploi_durable",
                         housed=True, answered_on=today, created_at=now))  # fmt: skip
        made["follow_up_due"], made["follow_up_done"] = people[0].id, people[1].id
    return made


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def home(request) -> World:
    for world in world_per_database(request):
        world.made = _situations(world)  # type: ignore[attr-defined]
        yield world


def _client(world: World, key: str) -> TestClient:
    client = TestClient(world.app)  # type: ignore[attr-defined]
    assert login(client, world.emails[key]).status_code == 303
    return client


# --- the same figures counted by hand -------------------------------------------------------


class Rows:
    """Every referral and partner answer of the world, read once, counted in plain Python."""

    def __init__(self, world: World) -> None:
        self.now = world.clock.now()
        with world.db.sessions() as s:
            self.refs = list(s.scalars(select(m.Referral)))
            self.codes = dict(s.execute(select(m.Territory.id, m.Territory.code)).all())
            self.partner_of = dict(s.execute(select(m.Offer.id, m.Partner.name)
                                             .join(m.Partner)).all())  # fmt: skip
            self.partner_id_of = dict(s.execute(select(m.Offer.id, m.Offer.partner_id)).all())
            events = list(s.scalars(select(m.ReferralEvent).order_by(m.ReferralEvent.id)))
            self.refs_of = dict(s.execute(select(m.Salarie.id, m.Salarie.reference)).all())
            self.placed = {a.referral_id: as_utc(a.created_at)
                           for a in s.scalars(select(m.SlotAssignment))}  # fmt: skip
            for r in self.refs:
                s.expunge(r)
        self.by_id = {r.id: r for r in self.refs}
        self.sent: dict[int, list[datetime]] = defaultdict(list)
        self.answers: list[tuple[m.Referral, bool, datetime]] = []
        for e in events:
            if e.to_state == "referred" and e.from_state != "referred":
                self.sent[e.referral_id].append(as_utc(e.at))
            if e.from_state == "referred" and e.action in ("partner_accept", "refuse"):
                self.answers.append((self.by_id[e.referral_id], e.action == "partner_accept",
                                     as_utc(e.at)))  # fmt: skip

    def territory(self, r: m.Referral) -> str:
        return self.codes[r.territory_id] if r.territory_id else "hors-territoire"

    def late(self, r: m.Referral) -> bool:
        return r.state in DEADLINE_STATES and r.due_at is not None and as_utc(r.due_at) < self.now

    def open(self, keep) -> list[m.Referral]:  # type: ignore[no-untyped-def]
        return [r for r in self.refs if r.state in OPEN_STATES and keep(r)]


def _figure(page: str, ident: str) -> tuple[int, str | None]:
    """A figure of the page (its tile ``ident``): the number, and its link if any."""
    tile = page.split(f'id="{ident}"', 1)[1].split("</li>", 1)[0]
    value = re.search(r'class="tile-value">(?:<a href="([^"]+)">)?([^<]+)', tile)
    assert value, f"no figure {ident}"
    first = value.group(2).split("/")[0].strip().replace("\u202f", "")
    return int(first), html.unescape(value.group(1)) if value.group(1) else None


def _cells(page: str, table: str) -> dict[str, list[tuple[int | str, str | None]]]:
    """The rows of a table of the page: row heading -> [(number, link)] of its numeric
    cells (the text instead of a number when the cell says more: "3 jours", "1 logement")."""
    body = page.split(f'id="{table}"', 1)[1].split("</table>", 1)[0].split("<tbody>", 1)[1]
    out = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S):
        head = re.sub(r"<[^>]+>", "", row.split("</th>", 1)[0]).strip()
        cells = []
        for cell in re.findall(r'<td class="num">(.*?)</td>', row, re.S):
            link = re.search(r'href="([^"]+)"', cell)
            text = html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            digits = text.replace("\u202f", "")
            value: int | str = int(digits) if digits.isdigit() else text
            cells.append((value, html.unescape(link.group(1)) if link else None))
        out[html.unescape(head)] = cells
    return out


def _queue_total(client: TestClient, url: str) -> int:
    """The total the queue page shows for a link of the dashboard."""
    assert urlsplit(url).path == "/file", url
    page = client.get(url)
    assert page.status_code == 200, url
    found = CAPTION.search(page.text)
    if found is None:
        assert "<caption>Aucune orientation</caption>" in page.text, url
        return 0
    return int(found.group(1).replace("\u202f", ""))


def _by_state(refs: list[m.Referral]) -> Counter[str]:
    return Counter(r.state for r in refs)


# --- chargé·e de partenariats -----------------------------------------------------------------


def test_officer_sees_their_own_load_late_items_and_answers(home):
    rows, made, me = Rows(home), home.made, home.user_ids["officer"]
    client = _client(home, "officer")
    response = client.get("/tableau-de-bord")
    assert response.status_code == 200
    page = html.unescape(response.text)
    mine = rows.open(lambda r: r.owner_user_id == me)
    load, link = _figure(page, "charge")
    assert load == len(mine) and _queue_total(client, link) == load
    assert parse_qs(urlsplit(link).query)["moi"] == ["1"]
    late = [r for r in mine if rows.late(r)]
    assert {made["triage_late"], made["referred_late"]} <= {r.id for r in late}
    n, link = _figure(page, "en-retard")
    assert n == len(late) and _queue_total(client, link) == n
    referred = [r for r in mine if r.state == "referred"]
    n, link = _figure(page, "attente-partenaire")
    assert n == len(referred) and _queue_total(client, link) == n
    # the answers of the last 7 days on their orientations: one accepted, one declined
    week = [(r, ok) for r, ok, at in rows.answers
            if r.owner_user_id == me and at >= rows.now - timedelta(days=7)]  # fmt: skip
    assert {r.id for r, _ in week} == {made["accepted_recent"], made["declined_recent"]}
    assert _figure(page, "reponses")[0] == 2
    assert "1 acceptée, 1 refusée" in page
    answers = page.split('id="liste-reponses"', 1)[1].split("</table>", 1)[0]
    assert f'href="/orientations/{made["accepted_recent"]}"' in answers
    assert f'href="/orientations/{made["declined_recent"]}"' in answers
    assert f'href="/orientations/{made["accepted_old"]}"' not in answers  # 20 days ago
    # by state: every open state, each count its queue's total
    states = _cells(page, "tableau-etats")
    counted = _by_state(mine)
    for label, [(n, link)] in states.items():
        if label == "Total en cours":
            assert n == len(mine)
            continue
        state = next(s for s in OPEN_STATES if _state_label(s) == label)
        assert n == counted[state], label
        if n:
            assert _queue_total(client, link) == n
    # the whole scope (Paris × logement, and what they own elsewhere)
    paris = next(k for k, v in rows.codes.items() if v == "paris")
    scope = rows.open(lambda r: (r.territory_id == paris and r.domain == "logement")
                      or r.owner_user_id == me)  # fmt: skip
    assert f"{len(scope)} orientations en cours" in page.replace("\u202f", "")
    # nothing from Isère nor from the emploi domain
    for other in ("isere_answer", "isere_late", "emploi_late"):
        assert f'href="/orientations/{made[other]}"' not in page, other
    assert f'href="/orientations/{made["triage_late"]}"' in page


def _state_label(state: str) -> str:
    from engine.domain.labels import STATE_PLURAL_LABELS

    return STATE_PLURAL_LABELS[state]


def test_an_officer_elsewhere_sees_none_of_it(home):
    rows, made = Rows(home), home.made
    lyon = html.unescape(_client(home, "officer_other_territory").get("/tableau-de-bord").text)
    emploi = html.unescape(_client(home, "officer_other_domain").get("/tableau-de-bord").text)
    for key in ("accepted_recent", "declined_recent", "referred_late", "triage_late"):
        assert f'href="/orientations/{made[key]}"' not in lyon + emploi, key
        reference = rows.refs_of[rows.by_id[made[key]].salarie_id]
        assert reference not in lyon, key  # nobody of Paris in Lyon
    assert _figure(lyon, "reponses")[0] == 0
    assert "Aucune réponse de partenaire ces 7 derniers jours." in lyon


# --- coordination -----------------------------------------------------------------------------


def test_coordinator_sees_the_territory_queues_loads_delays_and_pools(home):
    rows, made = Rows(home), home.made
    client = _client(home, "coordinator")
    response = client.get("/tableau-de-bord")
    assert response.status_code == 200
    page = html.unescape(response.text)
    mine = rows.open(lambda r: rows.territory(r) == "paris")
    # per domain: new, triaging, referred, waitlisted, overdue, open — each its queue's total
    queues = _cells(page, "tableau-files")
    labels = {"emploi": "Emploi", "sante": "Santé", "logement": "Logement",
              "transverse": "Transverse"}  # fmt: skip
    for domain, label in [*labels.items(), (None, "Tous domaines")]:
        refs = [r for r in mine if domain is None or r.domain == domain]
        expected = [*(_by_state(refs)[s] for s in ("new", "triaging", "referred", "waitlisted")),
                    sum(1 for r in refs if rows.late(r)), len(refs)]  # fmt: skip
        assert [n for n, _ in queues[label]] == expected, label
        for n, link in queues[label]:
            if n:
                assert parse_qs(urlsplit(link).query)["territoire"] == ["paris"]
                assert _queue_total(client, link) == n, link
    assert queues["Emploi"][4][0] >= 1 and queues["Logement"][4][0] >= 2  # the late ones
    assert queues["Logement"][3][0] >= 1  # the person waiting for a place
    # each chargée's load against their cap
    with home.db.sessions() as s:
        officers = s.scalars(select(m.StaffUser).where(
            m.StaffUser.role == "officer", m.StaffUser.active,
            m.StaffUser.territory_id == next(k for k, v in rows.codes.items() if v == "paris"),
        )).all()  # fmt: skip
        names = {u.display_name: u.id for u in officers}
    loads = page.split('id="tableau-charge"', 1)[1].split("</table>", 1)[0]
    for name, uid in names.items():
        n = sum(1 for r in mine if r.owner_user_id == uid)
        row = loads.split(f'<th scope="row">{name}</th>', 1)[1].split("</tr>", 1)[0]
        assert re.findall(r'<td class="num">([^<]+)</td>', row)[0] == str(n), name
    assert "<svg" in page.split('id="titre-charge"', 1)[1].split("</section>", 1)[0]
    # partners' answers of the last 90 days in Paris: counts and median delay
    delays: dict[str, list[float]] = defaultdict(list)
    accepted: Counter[str] = Counter()
    for r, ok, at in rows.answers:
        if rows.territory(r) == "paris" and at >= rows.now - timedelta(days=90):
            sent = max(t for t in rows.sent[r.id] if t <= at)
            delays[rows.partner_of[r.offer_id]].append((at - sent).total_seconds() / 86400)
            accepted[rows.partner_of[r.offer_id]] += ok
    assert sum(len(v) for v in delays.values()) == 3  # 1, 2 and 20 days ago, not Isère's
    table = _cells(page, "tableau-delais")
    assert set(table) == set(delays)
    for partner, values in delays.items():
        (answers, _), (ok, _), (median, _) = table[partner]
        assert (answers, ok) == (len(values), accepted[partner])
        assert median == _days(statistics.median(values)), partner
    # the pools of Paris: live counts of /places
    with unit_of_work(home.db) as s:
        live = pools_overview(s, _user(s, home, "coordinator"), territory="paris")
    pools = _cells(page, "tableau-places")
    assert {name: [n for n, _ in cells] for name, cells in pools.items()} == {
        p.name: [p.units(p.capacity), p.used, p.proposed, p.free] for p in live
    }
    assert sum(p.used for p in live) == 1  # the place validated above
    for key in ("isere_answer", "isere_late"):
        assert rows.refs_of[rows.by_id[made[key]].salarie_id] not in page


def _days(value: float) -> str:
    from reporting.formats import days

    return days(value)


def test_the_lyon_coordination_sees_lyon_only(home):
    client = _client(home, "coordinator_other")
    page = html.unescape(client.get("/tableau-de-bord").text)
    assert '<strong id="perimetre">Convergence Lyon</strong>' in page
    assert "Convergence Paris" not in page
    for _n, link in (c for cells in _cells(page, "tableau-files").values() for c in cells):
        if link:
            assert parse_qs(urlsplit(link).query)["territoire"] == ["lyon"]
    assert client.get("/tableau-de-bord?territoire=paris").status_code == 404
    assert client.get("/tableau-de-bord?territoire=lyon").status_code == 200


def test_the_national_phc_queue_coordination_sees_the_chantiers_outside_territories(home):
    client = TestClient(home.app)  # type: ignore[attr-defined]
    assert login(client, f"equipe-phc@{MAIL_DOMAIN}").status_code == 303
    page = html.unescape(client.get("/tableau-de-bord").text)
    assert '<strong id="perimetre">Hors territoire</strong>' in page
    rows = Rows(home)
    outside = rows.open(lambda r: r.territory_id is None)
    assert _cells(page, "tableau-files")["Tous domaines"][5][0] == len(outside) > 0
    assert client.get("/tableau-de-bord?territoire=paris").status_code == 404


# --- national team ----------------------------------------------------------------------------


def test_national_team_sees_the_territories_side_by_side(home):
    rows, made = Rows(home), home.made
    client = _client(home, "admin")
    page = html.unescape(client.get("/tableau-de-bord").text)
    table = _cells(page, "tableau-territoires")
    with home.db.sessions() as s:
        names = dict(s.execute(select(m.Territory.code, m.Territory.name)).all())
    names["hors-territoire"] = "Hors territoire"
    year_start = datetime(rows.now.astimezone(PARIS).year, 1, 1, tzinfo=PARIS)
    for code, name in names.items():
        refs = rows.open(lambda r, code=code: rows.territory(r) == code)
        if code == "hors-territoire" and not refs:
            continue
        placed = {rid for rid, at in rows.placed.items()
                  if at >= year_start and rows.territory(rows.by_id[rid]) == code}  # fmt: skip
        expected = [len(refs), sum(1 for r in refs if rows.late(r)),
                    _by_state(refs)["referred"], _by_state(refs)["waitlisted"], len(placed)]  # fmt: skip
        assert [n for n, _ in table[name]] == expected, name
    assert table["Convergence Paris"][4][0] == 1 and table["Convergence Isère"][1][0] >= 1
    total = table["Tout le réseau"]
    assert total[0][0] == len(rows.open(lambda r: True))
    for cells in (table["Convergence Paris"], table["Convergence Isère"], total):
        for n, link in cells[:4]:
            if n:
                assert _queue_total(client, link) == n, link
    assert 'href="/impact"' in page and 'href="/pilotage"' in page
    assert "<svg" in page and 'role="img"' in page
    # a territory's own view, from its name
    isere = client.get("/tableau-de-bord?territoire=isere")
    assert isere.status_code == 200
    text = html.unescape(isere.text)
    assert '<strong id="perimetre">Convergence Isère</strong>' in text
    assert "Tous les territoires" in text
    assert rows.partner_of[rows.by_id[made["isere_answer"]].offer_id] in _cells(
        text, "tableau-delais"
    )
    outside = client.get("/tableau-de-bord?territoire=hors-territoire")
    assert outside.status_code == 200 and "Hors territoire" in outside.text


# --- CIP / ESP and partner --------------------------------------------------------------------


def test_cip_sees_their_chantier_people_and_follow_ups_due(home):
    rows, made = Rows(home), home.made
    client = _client(home, "cip")
    page = html.unescape(client.get("/tableau-de-bord").text)
    chantier = rows.by_id[home.target_id].chantier_id
    refs = rows.open(lambda r: r.chantier_id == chantier)
    n, link = _figure(page, "en-cours")
    assert n == len(refs) and _queue_total(client, link) == n
    people = Counter(r.salarie_id for r in refs)
    listed = page.split('id="tableau-salaries"', 1)[1].split("</table>", 1)[0]
    for sid, count in people.items():
        row = listed.split(f'href="/salaries/{sid}"', 1)[1].split("</tr>", 1)[0]
        cell = re.search(r'<td class="num"><a href="([^"]+)">([^<]+)</a>', row)
        assert cell and int(cell.group(2)) == count
        assert _queue_total(client, html.unescape(cell.group(1))) == count
    follow = page.split('id="tableau-suivis"', 1)[1].split("</table>", 1)[0]
    assert f'href="/salaries/{made["follow_up_due"]}/suivi/3"' in follow
    assert f'/salaries/{made["follow_up_done"]}/suivi/3"' not in follow
    assert _figure(page, "suivis")[0] >= 1
    other = html.unescape(_client(home, "cip_other").get("/tableau-de-bord").text)
    assert home.reference not in other and f"/salaries/{made['follow_up_due']}" not in other


def test_partner_sees_what_waits_for_its_answer(home):
    rows = Rows(home)
    client = _client(home, "partner")
    page = html.unescape(client.get("/tableau-de-bord").text)
    theirs = rows.open(lambda r: r.offer_id is not None
                       and rows.partner_id_of[r.offer_id] == home.partner_id)  # fmt: skip
    states = _by_state(theirs)
    for ident, state in (("attente-reponse", "referred"), ("acceptees", "accepted"),
                         ("en-cours", "in_progress")):  # fmt: skip
        n, link = _figure(page, ident)
        assert n == states[state], ident
        if n:
            assert _queue_total(client, link) == n
    late = sum(1 for r in theirs if rows.late(r))
    n, link = _figure(page, "en-retard")
    assert n == late >= 1 and _queue_total(client, link) == n
    assert f'href="/orientations/{home.target_id}"' in page
    other = html.unescape(_client(home, "partner_other").get("/tableau-de-bord").text)
    assert home.reference not in other


# --- landing, redirects, bad parameters, cost -------------------------------------------------


def test_home_and_login_land_on_the_dashboard(home):
    anonymous = TestClient(home.app)  # type: ignore[attr-defined]
    assert anonymous.get("/", follow_redirects=False).headers["location"] == "/connexion"
    gone = anonymous.get("/tableau-de-bord", follow_redirects=False)
    assert gone.status_code == 303
    assert gone.headers["location"] == "/connexion?suivant=/tableau-de-bord"
    client = TestClient(home.app)  # type: ignore[attr-defined]
    form = client.get("/connexion")
    landed = client.post("/connexion", data={"csrf_token": csrf_of(form.text),
                         "email": home.emails["officer"], "password": PASSWORD},
                         follow_redirects=False)  # fmt: skip
    assert landed.status_code == 303 and landed.headers["location"] == "/tableau-de-bord"
    assert client.get("/", follow_redirects=False).headers["location"] == "/tableau-de-bord"
    page = client.get("/tableau-de-bord").text
    assert '<a href="/tableau-de-bord" aria-current="page">Tableau de bord</a>' in page


@pytest.mark.parametrize(
    ("role", "query", "status"),
    [
        ("officer", "territoire=isere", 404),
        ("officer", "territoire=paris", 404),
        ("coordinator", "territoire=isere", 404),
        ("coordinator", "territoire=", 404),
        ("admin", "territoire=nulle-part", 404),
        ("admin", "territoire=" + "x" * 500, 404),
        ("admin", "territoire=%27%20OR%201%3D1--", 404),
        ("admin", "territoire=%00", 422),
        ("admin", "territoire=paris&territoire=isere", 200),
        ("cip", "territoire=paris", 404),
        ("partner", "territoire=paris", 404),
        ("admin", "inconnu=1&tri=%FF", 200),
    ],
)
def test_bad_parameters_are_4xx_never_5xx(home, role, query, status):
    response = _client(home, role).get(f"/tableau-de-bord?{query}")
    assert response.status_code == status
    if status == 404:
        assert "Page introuvable" in response.text


def test_each_page_is_a_few_grouped_queries(home):
    """No query per referral, officer or partner: a handful per page whatever the data."""
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            statements.append(statement)

    clients = {key: _client(home, key) for key in ("admin", "coordinator", "officer", "cip",
                                                     "partner")}  # fmt: skip
    event.listen(home.db.engine, "before_cursor_execute", count)
    try:
        measured, warm = {}, {}
        for key, client in clients.items():
            client.app.state.queue_counts.clear()  # type: ignore[attr-defined]
            statements.clear()
            cold_page = client.get("/tableau-de-bord")
            assert cold_page.status_code == 200
            measured[key] = len(statements)
            assert not any("FROM referral " in s and "LIMIT" not in s and "GROUP BY" not in s
                           and "count(" not in s for s in statements), key  # fmt: skip
            # Again, nothing changed: the figures come from the cache, the page is the same.
            statements.clear()
            again = client.get("/tableau-de-bord")
            warm[key] = len(statements)
            assert again.text.split("<main")[1] == cold_page.text.split("<main")[1], key
    finally:
        event.remove(home.db.engine, "before_cursor_execute", count)
    # the session's own lookup and the referrals' version included; each role's reads
    # counted once by hand
    assert measured == {"admin": 6, "coordinator": 10, "officer": 7, "cip": 6, "partner": 5}
    assert all(warm[k] < measured[k] for k in measured), warm

"""The chargé·e's triage queue ("Ma file", issue #13): totals by state, search by reference
and by name, state and deadline badges, select all, pagination with its position, bulk
actions that keep the filters, filter options limited to the scope, the API's filters.

Read-only checks run on the session's seeded SQLite world; everything that writes runs on a
world of its own on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from engine.access.permissions import referral_scope
from engine.domain.labels import STATE_PLURAL_LABELS, deadline_badge, plural
from engine.domain.lifecycle import OPEN_STATES
from engine.referrals.queue import QueueFilters, count_queue, reference_candidates
from engine.store import models as m
from engine.store.db import unit_of_work
from tests.web.world import World, csrf_of, fresh_referral, login, world_per_database

IDS = re.compile(r'href="/orientations/(\d+)"')
SUMMARY = re.compile(r'<nav class="summary".*?</nav>', re.S)
COUNT = re.compile(
    r'<a href="([^"]+)" class="([^"]+)"[^>]*>([^<]+?) <strong>([\d\u202f]+)</strong>'
)
CAPTION = re.compile(r"<caption>(.*?)</caption>", re.S)
ROLES = ["admin", "coordinator", "officer", "officer_other_territory", "cip", "partner"]


def _summary(page: str) -> dict[str, tuple[int, str]]:
    """The summary bar of a queue page: label -> (count, link)."""
    found = SUMMARY.search(page)
    if not found:
        return {}
    return {
        html.unescape(label): (int(n.replace("\u202f", "")), html.unescape(url))
        for url, _css, label, n in COUNT.findall(found.group(0))
    }


def _caption(page: str) -> str:
    found = CAPTION.search(page)
    assert found, "no caption"
    return html.unescape(found.group(1)).strip()


def _user(world: World, key: str) -> m.StaffUser:
    with unit_of_work(world.db) as s:
        user = s.get(m.StaffUser, world.user_ids[key])
        s.expunge(user)
    return user


def _expected_counts(world: World, key: str) -> dict[str, int]:
    user = _user(world, key)
    with unit_of_work(world.db) as s:
        rows = s.execute(
            select(m.Referral.state, func.count())
            .where(referral_scope(user), m.Referral.state.in_(OPEN_STATES))
            .group_by(m.Referral.state)
        ).all()
    return {state: n for state, n in rows if n}


# --- totals by state -----------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_the_summary_counts_every_state_of_the_scope_as_the_database_does(clients, world, role):
    page = clients[role].get("/file").text
    expected = _expected_counts(world, role)
    bar = _summary(page)
    assert {label: n for label, (n, _) in bar.items() if label != "En retard"} == {
        STATE_PLURAL_LABELS[s]: n for s, n in expected.items()
    }
    total = sum(expected.values())
    caption = _caption(page)
    if total == 0:
        assert caption == "Aucune orientation" and "Nouvelles" not in page
    elif total <= 50:
        assert caption == plural(total, "orientation")
    else:
        assert caption.endswith(f"sur {total:,} orientations".replace(",", "\u202f"))


def test_each_count_links_to_its_state_and_the_list_has_that_many_rows(clients, world):
    officer = clients["officer"]
    bar = _summary(officer.get("/file").text)
    label, (n, url) = next(iter(bar.items()))
    assert parse_qs(urlsplit(url).query)["etat"] == ["new"] and label == "Nouvelles"
    page = officer.get(url).text
    assert 'aria-current="true"' in SUMMARY.search(page).group(0)  # type: ignore[union-attr]
    shown = len(IDS.findall(page))
    assert shown == min(n, 50)


def test_counts_are_computed_with_the_filters_of_the_list(clients, world):
    admin = clients["admin"]
    bar = _summary(admin.get("/file?domaine=sante&territoire=paris").text)
    with unit_of_work(world.db) as s:
        paris = s.scalar(select(m.Territory.id).where(m.Territory.code == "paris"))
        expected = s.scalar(
            select(func.count()).where(
                m.Referral.domain == "sante",
                m.Referral.territory_id == paris,
                m.Referral.state == "new",
            )
        )
    assert bar["Nouvelles"][0] == expected


# --- search ----------------------------------------------------------------------------------


def test_search_by_pseudonymous_reference_however_it_is_typed(clients, world):
    with unit_of_work(world.db) as s:
        salarie_id = s.scalar(select(m.Referral.salarie_id).where(m.Referral.id == world.target_id))
        theirs = set(s.scalars(select(m.Referral.id).where(m.Referral.salarie_id == salarie_id)))
    short = world.reference.removeprefix("SAL-")
    for typed in (world.reference, world.reference.lower(), short, f" sal {short} "):
        page = clients["officer"].get("/file", params={"reference": typed}).text
        ids = {int(i) for i in IDS.findall(page)}
        assert world.target_id in ids and ids <= theirs, typed
    assert reference_candidates("SAL-IO0123") == []  # not in the alphabet: no lookup


def test_a_reference_search_out_of_scope_finds_nothing_and_counts_nothing(clients, world):
    for role in ("officer_other_territory", "cip_other", "partner_other"):
        page = clients[role].get("/file", params={"reference": world.reference}).text
        assert IDS.findall(page) == [] and _summary(page) == {}, role
        assert _caption(page) == "Aucune orientation"
        api = clients[role].get("/api/v1/referrals", params={"reference": world.reference})
        assert api.status_code == 200 and api.json()["items"] == []
    # the emploi chargée of Paris finds the same person's emploi orientations, and only those
    user = _user(world, "officer_other_domain")
    with unit_of_work(world.db) as s:
        salarie_id = s.scalar(select(m.Referral.salarie_id).where(m.Referral.id == world.target_id))
        visible = set(s.scalars(select(m.Referral.id).where(
            m.Referral.salarie_id == salarie_id, referral_scope(user))))  # fmt: skip
    page = clients["officer_other_domain"].get("/file", params={"reference": world.reference}).text
    assert {int(i) for i in IDS.findall(page)} == visible and world.target_id not in visible
    assert sum(n for label, (n, _) in _summary(page).items() if label != "En retard") == len(
        visible
    )


def test_search_by_name_for_the_roles_that_may_read_identities(clients, world):
    for role in ("officer", "coordinator", "cip"):
        page = clients[role].get("/file", params={"nom": world.identity_last_name}).text
        assert 'id="f-nom"' in page
        assert world.target_id in {int(i) for i in IDS.findall(page)}, role
        api = clients[role].get("/api/v1/referrals", params={"q": world.identity_last_name})
        assert world.target_id in {i["id"] for i in api.json()["items"]}
    # a name search never crosses the scope
    for role in ("officer_other_territory", "cip_other"):
        page = clients[role].get("/file", params={"nom": world.identity_last_name}).text
        assert IDS.findall(page) == [] and _summary(page) == {}, role


@pytest.mark.parametrize("role", ["partner", "admin"])
def test_a_role_that_may_not_read_identities_cannot_search_by_name(clients, world, role):
    client = clients[role]
    page = html.unescape(client.get("/file", params={"nom": world.identity_last_name}).text)
    assert 'id="f-nom"' not in client.get("/file").text
    assert "La recherche par nom est réservée" in page
    assert IDS.findall(page) == [] and _summary(page) == {}  # no row, not even a count
    api = client.get("/api/v1/referrals", params={"q": world.identity_last_name})
    assert api.status_code == 403 and "recherche par nom" in api.json()["detail"]
    # the same answer whether the name exists or not: nothing to learn from it
    other = client.get("/api/v1/referrals", params={"q": "Zzyzxnotaname"})
    assert other.status_code == 403 and other.json() == api.json()


def test_a_partner_contact_does_not_see_nor_search_the_chantier_reference(clients, world):
    page = clients["partner"].get("/file?etat=all").text
    assert "référence du chantier" not in html.unescape(page)
    items = clients["partner"].get("/api/v1/referrals?state=all").json()["items"]
    assert items and all(i["external_ref"] is None for i in items)


# --- API ---------------------------------------------------------------------------------------


def test_the_api_filters_by_reference(clients, world):
    api = clients["officer"].get("/api/v1/referrals", params={"reference": world.reference})
    assert api.status_code == 200
    items = api.json()["items"]
    assert world.target_id in {i["id"] for i in items}
    assert {i["reference"] for i in items} == {world.reference}
    everything = clients["officer"].get("/api/v1/referrals", params={"limit": 200}).json()
    assert len(everything["items"]) > len(items)  # not ignored any more


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("ref=SAL-AAAAAA", "ref"),
        ("reference=SAL-AAAAAA&nom=x", "nom"),
        ("limit=0", "limit"),
        ("sort=name", "sort"),
        ("overdue=peut-etre", "overdue"),
        ("reference=" + "x" * 81, "reference"),
    ],
)
def test_bad_api_parameters_are_refused_in_french(clients, query, field):
    answer = clients["officer"].get(f"/api/v1/referrals?{query}")
    assert answer.status_code == 422
    body = answer.json()
    assert (
        body["detail"].startswith("Saisie refusée : vérifiez") and f"« {field} »" in body["detail"]
    )


def test_a_cursor_that_is_not_ours_is_refused(clients):
    answer = clients["officer"].get("/api/v1/referrals?after=bm9wZQ")
    assert answer.status_code == 422 and "curseur" in answer.json()["detail"].lower()
    assert clients["officer"].get("/file?apres=bm9wZQ").status_code == 404


# --- filter options -----------------------------------------------------------------------------


def _options(page: str, select_id: str) -> list[str]:
    block = page.split(f'id="{select_id}"', 1)[1].split("</select>", 1)[0]
    return [html.unescape(o) for o in re.findall(r"<option [^>]*>([^<]*)</option>", block)]


def test_filter_options_are_those_of_the_scope(clients):
    officer = clients["officer"].get("/file").text
    assert _options(officer, "f-territoire") == ["Tous", "Convergence Paris"]
    assert _options(officer, "f-domaine") == ["Tous", "Logement"]
    chantiers = _options(officer, "f-chantier")
    assert len(chantiers) > 1 and all("Lyon" not in c for c in chantiers)
    admin = clients["admin"].get("/file").text
    territories = _options(admin, "f-territoire")
    assert len(territories) == 1 + 14 + 1  # Tous, the 14 territories, hors territoire
    assert any("Isère" in t for t in territories) and "Hors territoire" in territories
    cip = clients["cip"].get("/file").text
    assert len(_options(cip, "f-chantier")) == 2 and len(_options(cip, "f-territoire")) == 2
    partner = clients["partner"].get("/file?etat=all").text
    assert "Convergence Paris" in _options(partner, "f-territoire")
    assert len(_options(partner, "f-territoire")) < len(territories)


# --- pagination -------------------------------------------------------------------------------


@pytest.mark.parametrize("sort", ["priority", "due", "age"])
def test_pages_say_where_they_are_and_go_back_as_they_came(clients, sort):
    client = clients["admin"]
    url = f"/file?domaine=logement&tri={sort}"
    pages: list[tuple[str, list[str]]] = []
    while url and len(pages) < 4:
        page = client.get(url).text
        pages.append((page, IDS.findall(page)))
        nxt = re.search(r'href="(/file\?[^"]+)" rel="next"', page)
        url = html.unescape(nxt.group(1)) if nxt else ""
    assert len(pages) >= 3, "the seed has fewer than three pages of logement orientations"
    bar = _summary(pages[0][0])
    total = sum(n for label, (n, _) in bar.items() if label != "En retard")
    for number, (page, ids) in enumerate(pages):
        start = number * 50 + 1
        n = f"{total:,}".replace(",", "\u202f")
        assert _caption(page) == f"{start}–{start + len(ids) - 1} sur {n} orientations"
        prev = re.search(r'href="(/file\?[^"]+)" rel="prev"', page)
        if number == 0:
            assert prev is None
            continue
        assert prev is not None
        back = client.get(html.unescape(prev.group(1))).text
        assert IDS.findall(back) == pages[number - 1][1]
        assert _caption(back) == _caption(pages[number - 1][0])


# --- badges and plurals (pure) --------------------------------------------------------------


def test_deadline_badges_and_french_plurals():
    assert deadline_badge(True, -3) == ("En retard", "overdue")
    assert deadline_badge(True, 0) == ("En retard", "overdue")
    assert deadline_badge(False, 0) == ("Échéance aujourd'hui", "due-today")
    assert deadline_badge(False, 2) == ("J-2", "due-soon")
    assert deadline_badge(False, 4) is None and deadline_badge(False, None) is None
    assert plural(0, "orientation") == "0 orientation"
    assert plural(1, "orientation") == "1 orientation"
    assert plural(2, "orientation") == "2 orientations"
    assert plural(1234, "orientation") == "1\u202f234 orientations"
    assert plural(2, "orientation prise en charge", "orientations prises en charge") == (
        "2 orientations prises en charge"
    )


# --- on each database: everything that writes -------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def triage(request) -> World:
    yield from world_per_database(request)


def _client(world: World, key: str) -> TestClient:
    client = TestClient(world.app)  # type: ignore[attr-defined]
    assert login(client, world.emails[key]).status_code == 303
    return client


def _row(page: str, rid: int) -> str:
    return page.split(f'href="/orientations/{rid}"', 1)[1].split("</tr>", 1)[0]


def test_state_and_deadline_badges_follow_the_app_clock(triage):
    late, today, soon, later = (fresh_referral(triage) for _ in range(4))
    now = triage.clock.now()
    with unit_of_work(triage.db) as s:
        s.get(m.Referral, late).due_at = now - timedelta(hours=2)
        s.get(m.Referral, today).due_at = now + timedelta(hours=2)
        s.get(m.Referral, soon).due_at = now + timedelta(days=2)
        s.get(m.Referral, later).due_at = now + timedelta(days=9)
    page = html.unescape(_client(triage, "officer").get("/file?tri=due&etat=new").text)
    assert '<span class="badge overdue">En retard</span>' in _row(page, late)
    assert '<span class="badge due-today">Échéance aujourd\'hui</span>' in _row(page, today)
    assert '<span class="badge due-soon">J-2</span>' in _row(page, soon)
    assert "badge" not in _row(page, later)
    assert '<span class="state state-new">Nouvelle</span>' in _row(page, late)
    bar = _summary(page)
    with unit_of_work(triage.db) as s:
        user = s.get(m.StaffUser, triage.user_ids["officer"])
        counts = count_queue(s, user, QueueFilters(state="new"), now=now)
    assert bar["En retard"][0] == counts.overdue >= 1
    overdue_only = _client(triage, "officer").get(bar["En retard"][1]).text
    assert late in {int(i) for i in IDS.findall(overdue_only)}
    assert today not in {int(i) for i in IDS.findall(overdue_only)}


def test_search_by_the_chantier_reference_shown_beside_the_pseudonymous_one(triage):
    with unit_of_work(triage.db) as s:
        salarie = s.get(m.Salarie, s.get(m.Referral, triage.target_id).salarie_id)
        salarie.external_ref = "ACI-75-0042"
    officer = _client(triage, "officer")
    page = officer.get("/file", params={"reference": "ACI-75-0042"}).text
    assert IDS.findall(page) and triage.target_id in {int(i) for i in IDS.findall(page)}
    assert '<span class="external-ref" title="Référence du chantier">ACI-75-0042</span>' in page
    api = officer.get("/api/v1/referrals", params={"reference": "ACI-75-0042"}).json()["items"]
    assert triage.target_id in {i["id"] for i in api} and api[0]["external_ref"] == "ACI-75-0042"
    # the partner it was referred to finds it by the pseudonymous reference only
    partner = _client(triage, "partner")
    assert partner.get("/api/v1/referrals", params={"reference": "ACI-75-0042"}).json() == {
        "items": [],
        "next": None,
    }
    found = partner.get("/api/v1/referrals", params={"reference": triage.reference}).json()
    assert triage.target_id in {i["id"] for i in found["items"]}
    assert "ACI-75-0042" not in partner.get(f"/file?reference={triage.reference}").text
    lyon = _client(triage, "officer_other_territory")
    assert IDS.findall(lyon.get("/file", params={"reference": "ACI-75-0042"}).text) == []


def test_bulk_with_nothing_ticked_is_an_error_and_writes_nothing(triage):
    officer = _client(triage, "officer")
    query = "domaine=logement&etat=new&tri=due"
    token = csrf_of(officer.get(f"/file?{query}").text)
    with unit_of_work(triage.db) as s:
        events = s.scalar(select(func.count()).select_from(m.ReferralEvent))
    answer = officer.post(
        f"/file/actions?{query}",
        data={"csrf_token": token, "action": "take"},
        follow_redirects=False,
    )
    assert answer.status_code == 422
    page = html.unescape(answer.text)
    assert (
        '<div class="notice error" role="alert" id="erreur">Cochez au moins une orientation.'
        in page
    )
    assert "prise en charge" not in page and "notice success" not in page
    assert "selected>Échéance</option>" in page  # the filters are still those of the page
    with unit_of_work(triage.db) as s:
        assert s.scalar(select(func.count()).select_from(m.ReferralEvent)) == events
    # malformed values are nothing ticked too
    junk = officer.post(f"/file/actions?{query}", data={"csrf_token": token, "action": "take",
                        "selection": ["x", "0:1", "-4"]}, follow_redirects=False)  # fmt: skip
    assert junk.status_code == 422


def test_bulk_take_keeps_the_filters_and_speaks_french(triage):
    a, b = fresh_referral(triage), fresh_referral(triage)
    officer = _client(triage, "officer")
    query = "domaine=logement&etat=new&tri=age"
    page = officer.get(f"/file?{query}").text
    action = html.unescape(
        re.search(r'<form method="post" action="([^"]+)" class="bulk">', page).group(1)
    )  # type: ignore[union-attr]
    assert action.startswith("/file/actions?") and "tri=age" in action
    done = officer.post(action, data={"csrf_token": csrf_of(page), "action": "take",
                        "selection": [f"{a}:1", f"{b}:1"]}, follow_redirects=False)  # fmt: skip
    assert done.status_code == 303
    target = urlsplit(done.headers["location"])
    assert target.path == "/file"
    assert parse_qs(target.query) == {"domaine": ["logement"], "etat": ["new"], "tri": ["age"]}
    shown = html.unescape(officer.get(done.headers["location"]).text)
    assert "2 orientations prises en charge." in shown
    # one stale: "1 orientation prise en charge", "1 orientation n'a pas pu l'être"
    c, d = fresh_referral(triage), fresh_referral(triage)
    token = csrf_of(officer.get("/file").text)
    again = officer.post("/file/actions", data={"csrf_token": token, "action": "take",
                         "selection": [f"{c}:1", f"{d}:9"]})  # fmt: skip
    text = html.unescape(again.text)
    assert "1 orientation prise en charge. 1 orientation n'a pas pu l'être" in text
    # all stale: an error, not a green "0 orientation"
    stale = officer.post("/file/actions", data={"csrf_token": token, "action": "take",
                         "selection": [f"{d}:9"]}, follow_redirects=False)  # fmt: skip
    assert stale.status_code == 409
    assert "Aucune orientation prise en charge" in html.unescape(stale.text)
    assert "notice success" not in stale.text
    with unit_of_work(triage.db) as s:
        assert [s.get(m.Referral, r).state for r in (a, b, c, d)] == [
            "triaging",
            "triaging",
            "triaging",
            "new",
        ]


def test_select_all_without_javascript_ticks_every_row_of_the_page(triage):
    officer = _client(triage, "officer")
    page = officer.get("/file?etat=new").text
    link = re.search(r'<a href="([^"]+)">Tout cocher sur cette page</a>', page)
    assert link and 'src="/static/queue.js"' in page
    ticked = officer.get(html.unescape(link.group(1))).text
    boxes = re.findall(r'<input type="checkbox" name="selection"[^>]*>', ticked)
    assert boxes and all("checked" in b for b in boxes)
    assert len(boxes) == len(IDS.findall(ticked))
    script = officer.get("/static/queue.js")
    assert script.status_code == 200 and "data-select-all" in script.text

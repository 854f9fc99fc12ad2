"""The details of /places, /partenaires and /journal-acces: French plurals, territory names
(never slugs), the directory's search and count, the access log's filters and CSV export."""

from __future__ import annotations

import csv
import html
import io
import re

import pytest
from sqlalchemy import select

from engine.domain.errors import Forbidden
from engine.domain.labels import unit_count
from engine.store import models as m
from engine.store.db import unit_of_work
from partners.taxonomy import label_of


def _text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def _main(page: str) -> str:
    return page.split('id="contenu"', 1)[1] if 'id="contenu"' in page else page


def _codes_and_names(world) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with world.db.sessions() as s:
        return dict(s.execute(select(m.Territory.code, m.Territory.name)).all())


# --- /places -------------------------------------------------------------------------------


def test_places_says_units_in_words_and_territories_by_name(clients, world):
    page = clients["admin"].get("/places").text
    text = _text(_main(page))
    names = _codes_and_names(world)
    with world.db.sessions() as s:
        pools = s.scalars(select(m.SlotPool)).all()
    assert f"{len(pools)} dispositifs" in text
    rows = re.findall(r"<tr><td>(.*?)</tr>", page, flags=re.S)
    assert len(rows) == len(pools)
    for pool in pools:
        cells = next(
            [_text(c).strip() for c in re.findall(r"<td>(.*?)</td>", "<td>" + r, flags=re.S)]
            for r in rows
            if unit_count(pool.capacity, pool.unit_kind) in _text(r)
            and (pool.scope is None or names[pool.scope[0]] in _text(r))
        )
        assert cells[4] == unit_count(pool.capacity, pool.unit_kind)
        if pool.scope:
            assert cells[2] == ", ".join(sorted(names[c] for c in pool.scope))
        else:
            assert cells[2] == "National"
        assert re.fullmatch(r"\d+ personnes?", cells[8])
    for code in names:
        assert f"({code}" not in text and f", {code})" not in text  # no slug, even in names
    for pool in pools:
        if pool.scope and len(pool.scope) > 1:
            assert ", ".join(pool.scope) not in text
    assert "(s)" not in text


def test_unit_count_plurals():
    assert unit_count(1, "logement") == "1 logement"
    assert unit_count(3, "logement") == "3 logements"
    assert unit_count(54, "bilan") == "54 bilans de santé"
    assert unit_count(0, "place") == "0 place d'hébergement"
    assert unit_count(11, "place") == "11 places d'hébergement"
    assert unit_count(2, "mesure") == "2 mesures d'accompagnement"


# --- /partenaires --------------------------------------------------------------------------


def test_partners_count_names_and_plurals(clients, world):
    page = clients["officer"].get("/partenaires").text
    text = _text(_main(page))
    names = _codes_and_names(world)
    with world.db.sessions() as s:
        partners = s.scalars(select(m.Partner)).all()
        offers = s.scalars(select(m.Offer)).all()
        capacity: dict[int, int] = {}
        for pool in s.scalars(select(m.SlotPool)):
            capacity[pool.offer_id] = capacity.get(pool.offer_id, 0) + pool.capacity
    assert f"{len(partners)} partenaires · {len(offers)} offres" in text
    articles = {
        html.unescape(re.search(r"<h2>(.*?)</h2>", a).group(1)): _text(a)  # type: ignore[union-attr]
        for a in page.split('<article class="partner">')[1:]
    }
    assert len(articles) == len(partners)
    for p in partners:
        article = articles[p.name]
        if p.coverage:
            words = ", ".join(sorted(names[c] for c in p.coverage))
            label = "Territoire" if len(p.coverage) == 1 else "Territoires"
            assert f"{label} : {words} ·" in article
        mine = [o for o in offers if o.partner_id == p.id]
        assert (f"{len(mine)} offres" if len(mine) > 1 else f"{len(mine)} offre") in article
    for o in offers:
        if o.slot_based and o.id in capacity:
            assert f"(places comptées : {unit_count(capacity[o.id], o.unit_kind)})" in text
    assert "(s)" not in text


def test_partners_search_by_name_and_thematique(clients, world):
    client = clients["officer"]
    with world.db.sessions() as s:
        partner = s.scalars(select(m.Partner).order_by(m.Partner.id)).first()
        offer = s.scalars(select(m.Offer).where(m.Offer.thematiques.is_not(None))).first()
        all_offers = s.scalars(select(m.Offer)).all()
        owners = {p.id: p.name for p in s.scalars(select(m.Partner))}
    word = partner.name.split()[0]
    found = client.get("/partenaires", params={"q": word.upper()}).text
    titles = [html.unescape(t) for t in re.findall(r"<h2>(.*?)</h2>", found)]
    assert partner.name in titles and all(
        word.casefold() in t.casefold()
        or any(
            word.casefold() in o.name.casefold()
            or any(word.casefold() in label_of(th).casefold() for th in o.thematiques)
            for o in all_offers
            if owners[o.partner_id] == t
        )
        for t in titles
    )
    assert f'value="{html.escape(word.upper())}"' in found  # the box keeps the search
    theme = label_of(offer.thematiques[0])
    by_theme = client.get("/partenaires", params={"q": theme}).text
    titles = {html.unescape(t) for t in re.findall(r"<h2>(.*?)</h2>", by_theme)}
    expected = {
        owners[o.partner_id]
        for o in all_offers
        if any(theme.casefold() in label_of(th).casefold() for th in o.thematiques)
        or theme.casefold() in o.name.casefold()
        or theme.casefold() in owners[o.partner_id].casefold()
    }
    assert titles == expected
    count = len(titles)
    assert (f"{count} partenaires" if count > 1 else f"{count} partenaire") in _text(by_theme)
    nothing = client.get("/partenaires", params={"q": "zzz-introuvable"}).text
    assert "0 partenaire" in _text(nothing) and "Aucun partenaire ne correspond" in _text(nothing)


# --- /journal-acces ----------------------------------------------------------------------


def _staff_emails(world) -> list[str]:  # type: ignore[no-untyped-def]
    with world.db.sessions() as s:
        return list(s.scalars(select(m.StaffUser.email)))


def _table(page: str) -> str:
    return page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]


def test_access_log_shows_accounts_by_name_and_role(clients, world):
    clients["cip"].get(f"/orientations/{world.target_id}")
    page = clients["admin"].get("/journal-acces").text
    with world.db.sessions() as s:
        cip = s.get(m.StaffUser, world.user_ids["cip"])
    table = _table(page)
    assert html.escape(cip.display_name) in table and "CIP / ESP" in table
    assert not [e for e in _staff_emails(world) if e in table]


def test_access_log_filters(clients, world):
    clients["cip"].get(f"/orientations/{world.target_id}")
    clients["officer"].get(f"/orientations/{world.target_id}")
    admin = clients["admin"]
    by_ref = admin.get("/journal-acces", params={"reference": world.reference.lower()}).text
    rows = re.findall(r"<tr><td>(.*?)</tr>", _table(by_ref), flags=re.S)
    assert rows and all(world.reference in r for r in rows)
    assert re.search(rf"{len(rows)} consultations?", _text(by_ref))
    cip_id = str(world.user_ids["cip"])
    assert f'<option value="{cip_id}"' in by_ref  # accounts that read a file
    by_account = admin.get("/journal-acces", params={"compte": cip_id}).text
    with world.db.sessions() as s:
        cip_name = s.get(m.StaffUser, world.user_ids["cip"]).display_name
        purposes = set(s.scalars(select(m.AccessLog.purpose)))
    account_rows = re.findall(r"<tr><td>(.*?)</tr>", _table(by_account), flags=re.S)
    assert account_rows and all(html.escape(cip_name) in r for r in account_rows)
    today = world.clock.now().date().isoformat()
    same_day = admin.get("/journal-acces", params={"du": today, "au": today}).text
    assert re.findall(r"<tr><td>", _table(same_day))
    later = admin.get("/journal-acces", params={"du": "2099-01-01", "au": "2099-12-31"}).text
    assert "0 consultation" in _text(later) and "Aucune consultation ne correspond" in later
    assert "consultation" in purposes
    other = next(iter(purposes - {"consultation"}), None)
    by_purpose = admin.get("/journal-acces", params={"motif": "consultation"}).text
    cells = re.findall(r"<tr><td>.*?</td><td>.*?</td><td>.*?</td><td>.*?</td><td>(.*?)</td>",
                       _table(by_purpose))  # fmt: skip
    assert cells and set(cells) == {"consultation"}
    if other:
        assert html.escape(other) not in _table(by_purpose)
    bad = admin.get("/journal-acces", params={"du": "31/02/2026"})
    assert bad.status_code == 422 and "n'est pas valide" in _text(bad.text)


def test_access_log_csv_export_of_the_filtered_rows(clients, world):
    clients["cip"].get(f"/orientations/{world.target_id}")
    admin = clients["admin"]
    page = admin.get("/journal-acces", params={"reference": world.reference}).text
    link = re.search(r'href="(/journal-acces/export\.csv[^"]*)"', page)
    assert link and "reference=" in link.group(1)
    export = admin.get(html.unescape(link.group(1)))
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    body = export.content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body), delimiter=";"))
    assert rows[0] == ["Date (heure de Paris)", "Compte", "Rôle", "Référence de la personne",
                       "Motif", "Identité affichée"]  # fmt: skip
    shown = re.findall(r"<tr><td>", _table(page))
    assert len(rows) - 1 == len(shown) and all(r[3] == world.reference for r in rows[1:])
    everything = admin.get("/journal-acces/export.csv").content.decode("utf-8-sig")
    assert "@" not in everything  # no e-mail address of anyone
    with world.db.sessions() as s:
        identities = s.scalars(select(m.SalarieIdentity.last_name)).all()
    for row in list(csv.reader(io.StringIO(everything), delimiter=";"))[1:]:
        assert row[3].startswith("SAL-") and row[3] not in identities
    assert world.identity_last_name not in everything
    assert admin.get("/journal-acces/export.csv", params={"au": "hier"}).status_code == 422
    assert clients["coordinator"].get("/journal-acces/export.csv").status_code == 404


def test_access_log_dates_are_days_in_paris(world_db):
    """A read at 23:30 UTC on 25 November is on 26 November in Paris (UTC+1)."""
    from datetime import UTC, date, datetime

    from engine.access.log import AccessFilters, access_log, access_log_csv, count_access_log

    with unit_of_work(world_db.db) as s:
        admin = s.get(m.StaffUser, world_db.user_ids["admin"])
        salarie = s.scalar(select(m.Salarie.id).where(m.Salarie.reference == world_db.reference))
        s.add(
            m.AccessLog(user_id=admin.id, reader=admin.display_name, salarie_id=salarie,
                        at=datetime(2025, 11, 25, 23, 30, tzinfo=UTC), purpose="contrôle",
                        with_identity=False)
        )  # fmt: skip
    with world_db.db.sessions() as s:
        admin = s.get(m.StaffUser, world_db.user_ids["admin"])
        day = AccessFilters(date_from=date(2025, 11, 26), date_to=date(2025, 11, 26))
        rows, _ = access_log(s, admin, filters=day)
        assert [r.purpose for r in rows] == ["contrôle"] and count_access_log(s, admin, day) == 1
        before = AccessFilters(date_from=date(2025, 11, 25), date_to=date(2025, 11, 25))
        assert count_access_log(s, admin, before) == 0
        body = access_log_csv(s, admin, day).decode("utf-8-sig")
        assert "26/11/2025 00:30" in body and world_db.emails["admin"] not in body
        officer = s.get(m.StaffUser, world_db.user_ids["officer"])
        with pytest.raises(Forbidden):
            access_log_csv(s, officer, day)

"""The allocation review (/attributions) and the pools page (/places), as a coordinator uses
them, on SQLite and PostgreSQL: filters and pages, the run history, bulk validation through
the door, fairness in words, "Place proposée" until validated, live counts, coded declines.
"""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from engine.allocation import review
from engine.allocation.review import fairness_sentences
from engine.allocation.run import run_allocation
from engine.domain.labels import unit_count
from engine.store import models as m
from engine.store.db import unit_of_work
from tests.support.situations import NoSituation, waitlisted_for
from tests.web.world import World, csrf_of, login, waitlist_some
from web import app as web_app
from web import pages

PROPOSAL_ID = re.compile(r'id="proposition-(\d+)"')


def _client(world: World, role: str) -> TestClient:
    client = TestClient(web_app.create_app(world.settings, world.db, world.clock))
    assert login(client, world.emails[role]).status_code == 303
    return client


def _text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def _without_details(page: str) -> str:
    return re.sub(r"<details class=\"technical\">.*?</details>", "", page, flags=re.S)


OTHER_TERRITORIES = ("seine-saint-denis", "marseille", "nantes", "charente")


def _run(world: World, *, other: int = 3) -> int:
    """Room in every pool (20 more units), Paris logement referrals waiting and up to
    ``other`` of another territory, then one real run; returns its id."""
    with unit_of_work(world.db) as s:
        for pool in s.scalars(select(m.SlotPool)).all():
            last = s.scalar(
                select(func.max(m.SlotUnit.unit_no)).where(m.SlotUnit.pool_id == pool.id)
            )
            s.add_all(m.SlotUnit(pool_id=pool.id, unit_no=(last or 0) + i) for i in range(1, 21))
            pool.capacity += 20
    waitlist_some(world, 8)
    done = 0
    for territory in OTHER_TERRITORIES:
        while done < other:
            try:
                waitlisted_for(world, territory=territory)
            except NoSituation:
                break
            done += 1
    return run_allocation(world.db, world.settings, clock=world.clock).run_id


def _others(world: World) -> list[tuple[int, int, int, int]]:
    return [p for t in OTHER_TERRITORIES for p in _open(world, t)]


def _open(world: World, territory: str | None = None) -> list[tuple[int, int, int, int]]:
    """(proposal id, referral id, version, pool id) of open proposals, in ``territory``."""
    with world.db.sessions() as s:
        q = (
            select(
                m.AllocationProposal.id,
                m.AllocationProposal.referral_id,
                m.AllocationProposal.version,
                m.AllocationProposal.pool_id,
            )
            .join(m.Referral, m.Referral.id == m.AllocationProposal.referral_id)
            .where(m.AllocationProposal.status == "proposed")
            .order_by(m.AllocationProposal.id)
        )
        if territory:
            tid = s.scalar(select(m.Territory.id).where(m.Territory.code == territory))
            q = q.where(m.Referral.territory_id == tid)
        return [tuple(r) for r in s.execute(q).all()]  # type: ignore[misc]


# --- filters and pages -------------------------------------------------------------------


def test_filters_by_territory_and_pool_with_scoped_options_and_pages(world_db, monkeypatch):
    _run(world_db)
    paris, lyon = _open(world_db, "paris"), _others(world_db)
    assert paris and lyon, "the seed gives proposals in Paris and another territory"
    admin = _client(world_db, "admin")
    everything = set(map(int, PROPOSAL_ID.findall(admin.get("/attributions").text)))
    assert {p[0] for p in paris + lyon} <= everything
    only_paris = admin.get("/attributions?territoire=paris").text
    assert 'name="territoire"' in only_paris
    assert set(map(int, PROPOSAL_ID.findall(only_paris))) == {p[0] for p in paris}
    pool = paris[0][3]
    by_pool = admin.get(f"/attributions?dispositif={pool}").text
    assert set(map(int, PROPOSAL_ID.findall(by_pool))) == {
        p[0] for p in paris + lyon if p[3] == pool
    }
    # A coordinator's options are their territory's: no territory choice, pools covering it.
    coord = _client(world_db, "coordinator")
    page = coord.get("/attributions").text
    assert 'name="territoire"' not in page
    with world_db.db.sessions() as s:
        outside = [
            p.id for p in s.scalars(select(m.SlotPool)) if p.scope and "paris" not in p.scope
        ]
    for pid in outside:
        assert (
            f'<option value="{pid}"'
            not in page.split('id="a-dispositif"', 1)[1].split("</select>", 1)[0]
        )
    assert set(map(int, PROPOSAL_ID.findall(page))) == {p[0] for p in paris}
    # Another territory asked in the address shows nothing of it.
    with world_db.db.sessions() as s:
        other_code = s.scalar(
            select(m.Territory.code)
            .join(m.Referral, m.Referral.territory_id == m.Territory.id)
            .where(m.Referral.id == lyon[0][1])
        )
    assert not {p[0] for p in lyon} & set(
        map(int, PROPOSAL_ID.findall(coord.get(f"/attributions?territoire={other_code}").text))
    )
    # Pages: two proposals a page, "1–2 sur N propositions", a next link keeping the filters.
    monkeypatch.setattr(review, "PROPOSAL_PAGE", 2)
    monkeypatch.setattr(pages, "PROPOSAL_PAGE", 2)
    total = len(paris) + len(lyon)
    first = admin.get("/attributions").text
    assert len(PROPOSAL_ID.findall(first)) == 2
    assert f"1–2 sur {total} propositions" in _text(first)
    nxt = re.search(r'href="([^"]+)" rel="next"', first)
    assert nxt and "page=2" in nxt.group(1)
    second = admin.get(html.unescape(nxt.group(1))).text
    assert not set(PROPOSAL_ID.findall(first)) & set(PROPOSAL_ID.findall(second))


# --- run history -------------------------------------------------------------------------


def test_run_history_lists_runs_and_simulations_in_words(world_db):
    _run(world_db, other=0)
    coord = _client(world_db, "coordinator")
    token = csrf_of(coord.get("/attributions").text)
    dry = coord.post("/attributions/simulation", data={"csrf_token": token})
    assert dry.status_code == 200
    text = _text(dry.text)
    assert "Résultat de la simulation" in text and "rien n'a été enregistré" in text
    assert "exécution n°" not in text and "n° " not in _text(_without_details(dry.text))
    history = dry.text.split('id="historique"', 1)[1]
    rows = re.findall(r'<tr class="run( simulation)?">(.*?)</tr>', history, flags=re.S)
    assert len(rows) == 2
    (sim_css, sim), (real_css, real) = rows  # newest first
    with world_db.db.sessions() as s:
        name = s.get(m.StaffUser, world_db.user_ids["coordinator"]).display_name
        validated = s.scalar(select(func.count()).where(m.AllocationProposal.status == "validated"))
        paris = s.scalar(select(m.Territory.name).where(m.Territory.code == "paris"))
    assert sim_css and "Simulation" in sim and html.escape(name) in sim
    assert "(simulées)" in sim and html.escape(paris) in sim  # the coordinator's territory
    assert not real_css and "Attribution" in real and "Planification automatique" in real
    assert "part minimale par territoire 80 %" in _text(real)
    cells = re.findall(r"<td>(.*?)</td>", real)
    assert cells[-1] == str(validated)  # validated so far: none
    assert int(cells[-2]) == len(_open(world_db, "paris"))  # proposed, in the scope


# --- bulk validation ---------------------------------------------------------------------


def test_bulk_validation_goes_through_the_door_and_reports_failures(world_db):
    _run(world_db)
    paris, lyon = _open(world_db, "paris"), _others(world_db)
    assert len(paris) >= 3 and lyon
    (a, ra, va, _), (b, rb, vb, _), (c, rc, vc, _) = paris[:3]
    foreign = lyon[0]
    coord = _client(world_db, "coordinator")
    token = csrf_of(coord.get("/attributions").text)
    selection = [f"{a}:{va}", f"{b}:{vb}", f"{c}:{vc + 5}", f"{foreign[0]}:{foreign[2]}"]
    refused = coord.post("/attributions/selection", data={"selection": selection})
    assert refused.status_code == 403  # no CSRF token: nothing done
    assert len(_open(world_db, "paris")) == len(paris)
    done = coord.post(
        "/attributions/selection",
        data={"csrf_token": token, "selection": selection},
        follow_redirects=False,
    )
    assert done.status_code == 303
    summary = _text(coord.get(done.headers["location"]).text)
    assert "2 propositions validées" in summary
    assert "2 propositions n'ont pas pu l'être" in summary
    assert "modifiée entre-temps" in summary
    with world_db.db.sessions() as s:
        foreign_ref = s.get(m.Salarie, s.get(m.Referral, foreign[1]).salarie_id).reference
        assert foreign_ref not in summary  # a proposal out of scope is only a number
        assert f"proposition n° {foreign[0]}" in summary
        for pid, rid in ((a, ra), (b, rb)):
            prop = s.get(m.AllocationProposal, pid)
            assert prop.status == "validated" and s.get(m.Referral, rid).state == "accepted"
            events = s.scalar(
                select(func.count()).where(
                    m.ReferralEvent.referral_id == rid, m.ReferralEvent.action == "validate"
                )
            )
            held = s.scalar(
                select(func.count()).where(
                    m.SlotAssignment.referral_id == rid, m.SlotAssignment.active
                )
            )
            assert events == 1 and held == prop.units
        assert s.get(m.AllocationProposal, c).status == "proposed"  # stale version
        assert s.get(m.AllocationProposal, foreign[0]).status == "proposed"  # not in scope
    # The same selection again: nothing consumed twice.
    again = coord.post(
        "/attributions/selection",
        data={"csrf_token": token, "selection": selection[:2]},
        follow_redirects=False,
    )
    assert "Aucune proposition validée" in _text(coord.get(again.headers["location"]).text)
    with world_db.db.sessions() as s:
        for rid in (ra, rb):
            assert (
                s.scalar(
                    select(func.count()).where(
                        m.ReferralEvent.referral_id == rid, m.ReferralEvent.action == "validate"
                    )
                )
                == 1
            )
    nothing = coord.post("/attributions/selection", data={"csrf_token": token})
    assert nothing.status_code == 422 and "Cochez au moins une proposition" in _text(nothing.text)


# --- fairness and wording ------------------------------------------------------------------


def test_fairness_in_words_and_solver_details_folded(world_db):
    _run(world_db)
    page = _client(world_db, "admin").get("/attributions").text
    visible = _text(_without_details(page))
    for jargon in ("min_cost_flow", "cp_sat", "envie", "worst_", "Demande satisfaite"):
        assert jargon not in visible
    assert "part proportionnelle" in visible or "plusieurs territoires" in visible
    assert "Priorité respectée" in visible or "moins de points" in visible
    details = re.search(r'<details class="technical">(.*?)</details>', page, flags=re.S)
    assert details and "Détails techniques" in details.group(1)
    with world_db.db.sessions() as s:
        solver = s.scalar(select(m.AllocationRun.solver).where(m.AllocationRun.dry_run.is_(False)))
    assert solver and solver in details.group(1) and "Temps de calcul" in details.group(1)


def test_fairness_sentences():
    low = fairness_sentences(worst_share=0.33, alpha=0.8, floors_unmet=2, waited=0)
    assert low[0].startswith("Le territoire le moins servi a reçu 33 % de sa part")
    assert "Il manquait 2 places" in low[1] and low[2].startswith("Priorité respectée")
    ok = fairness_sentences(worst_share=0.85, alpha=0.8, waited=1, causes={"floor": 1})
    assert ok[0].startswith("Chaque territoire a reçu au moins 85 % de sa part")
    assert ok[1].startswith("1 personne est passée après") and "part minimale" in ok[1]
    many = fairness_sentences(worst_share=1.0, alpha=0.8, waited=3, causes={"floor": 3})
    assert "toute sa part" in many[0] and many[1].startswith("3 personnes sont passées")
    assert "envie" not in " ".join(low + ok + many)


def test_proposals_say_proposed_until_validated(world_db):
    _run(world_db, other=0)
    pid, _rid, version, _pool = _open(world_db, "paris")[0]
    coord = _client(world_db, "coordinator")
    page = coord.get("/attributions").text
    article = page.split(f'id="proposition-{pid}"', 1)[1].split("</article>", 1)[0]
    assert "Place proposée" in article and "Place attribuée" not in article
    token = csrf_of(page)
    coord.post(f"/attributions/{pid}/valider", data={"csrf_token": token, "version": version})
    done = coord.get("/attributions?statut=validees").text
    article = done.split(f'id="proposition-{pid}"', 1)[1].split("</article>", 1)[0]
    assert "Place attribuée" in article and "Place proposée" not in article


# --- live counts -----------------------------------------------------------------------------


def _row(page: str, name: str) -> list[str]:
    """The cells after the first of the table row whose first cell reads ``name``."""
    for row in re.findall(r"<tr>(.*?)</tr>", page, flags=re.S):
        cells = [_text(c).strip() for c in re.findall(r"<td>(.*?)</td>", row, flags=re.S)]
        if cells and cells[0] == name:
            return cells[1:]
    raise AssertionError(f"no row for {name}")


def test_pool_counts_are_live_after_validation_and_decline(world_db):
    _run(world_db, other=0)
    props = _open(world_db, "paris")
    pool_id = props[0][3]
    same = [p for p in props if p[3] == pool_id]
    with world_db.db.sessions() as s:
        pool = s.get(m.SlotPool, pool_id)
        names = dict(s.execute(select(m.Territory.code, m.Territory.name)).all())
        name = review.with_territory_names(pool.name, names)
        capacity, kind = pool.capacity, pool.unit_kind
        units = {
            p.id: p.units
            for p in s.scalars(select(m.AllocationProposal).where(m.AllocationProposal.pool_id == pool_id))
        }  # fmt: skip
        held0 = s.scalar(
            select(func.count())
            .select_from(m.SlotAssignment)
            .join(m.SlotUnit, m.SlotUnit.id == m.SlotAssignment.unit_id)
            .where(m.SlotUnit.pool_id == pool_id, m.SlotAssignment.active)
        )
    coord = _client(world_db, "coordinator")
    proposed0 = sum(units[p[0]] for p in _open(world_db) if p[3] == pool_id)

    def counts() -> tuple[list[str], list[str]]:
        places = _row(coord.get("/places").text, name)
        review_row = _row(coord.get("/attributions").text, name)
        return places, review_row

    places, review_row = counts()
    # /places: partner, territories, period, capacity, held, proposed, free, waiting
    assert places[3] == unit_count(capacity, kind)
    assert places[4:7] == [str(held0), str(proposed0), str(capacity - held0 - proposed0)]
    assert review_row[1:4] == [str(held0), str(proposed0), str(capacity - held0 - proposed0)]
    token = csrf_of(coord.get("/attributions").text)
    first = same[0]
    coord.post(f"/attributions/{first[0]}/valider", data={"csrf_token": token, "version": first[2]})
    held1, proposed1 = held0 + units[first[0]], proposed0 - units[first[0]]
    places, review_row = counts()
    assert places[4:7] == [str(held1), str(proposed1), str(capacity - held1 - proposed1)]
    assert review_row[1:4] == places[4:7]
    if len(same) > 1:
        second = same[1]
        coord.post(
            f"/attributions/{second[0]}/decliner",
            data={"csrf_token": token, "version": second[2], "reason": "unreachable"},
        )
        proposed2 = proposed1 - units[second[0]]
        places, review_row = counts()
        assert places[4:7] == [str(held1), str(proposed2), str(capacity - held1 - proposed2)]


# --- coded decline reason ------------------------------------------------------------------


@pytest.mark.parametrize(
    "form",
    [{"reason": "la personne a déménagé"}, {"reason": ""}, {"reason": "other", "note": " "}],
)
def test_decline_refuses_an_unknown_or_incomplete_reason_and_writes_nothing(world_db, form):
    _run(world_db, other=0)
    pid, rid, version, _pool = _open(world_db, "paris")[0]
    coord = _client(world_db, "coordinator")
    token = csrf_of(coord.get("/attributions").text)
    with world_db.db.sessions() as s:
        events = s.scalar(select(func.count()).where(m.ReferralEvent.referral_id == rid))
    bad = coord.post(
        f"/attributions/{pid}/decliner", data={"csrf_token": token, "version": version, **form}
    )
    assert bad.status_code == 422
    assert "Action impossible" in _text(bad.text) and "motif" in _text(bad.text)
    with world_db.db.sessions() as s:
        prop = s.get(m.AllocationProposal, pid)
        assert prop.status == "proposed" and prop.decline_reason is None and prop.version == version
        assert s.get(m.Referral, rid).state == "proposed"
        assert s.scalar(select(func.count()).where(m.ReferralEvent.referral_id == rid)) == events


def test_decline_stores_the_code_and_shows_its_label(world_db):
    _run(world_db, other=0)
    props = _open(world_db, "paris")
    assert len(props) >= 2
    (a, ra, va, _), (b, _rb, vb, _) = props[:2]
    coord = _client(world_db, "coordinator")
    page = coord.get("/attributions").text
    assert 'name="reason"' in page and '<option value="declined_by_person">' in page
    token = csrf_of(page)
    coord.post(
        f"/attributions/{a}/decliner",
        data={"csrf_token": token, "version": va, "reason": "declined_by_person"},
    )
    coord.post(
        f"/attributions/{b}/decliner",
        data={"csrf_token": token, "version": vb, "reason": "other", "note": "a déménagé"},
    )
    with world_db.db.sessions() as s:
        assert s.get(m.AllocationProposal, a).decline_reason == "declined_by_person"
        assert s.get(m.AllocationProposal, b).decline_reason == "other"
        assert s.get(m.Referral, ra).state == "waitlisted"
        note = s.scalar(
            select(m.ReferralEvent.note).where(
                m.ReferralEvent.referral_id == ra, m.ReferralEvent.action == "decline_proposal"
            )
        )
        assert note == "Refus de la personne"
    declined = _text(coord.get("/attributions?statut=declinees").text)
    assert "motif : Refus de la personne" in declined
    assert "motif : Autre : a déménagé" in declined
    assert "declined_by_person" not in declined


def test_simulation_summary_in_words():
    from engine.allocation.run import AllocationReport

    report = AllocationReport(
        run_id=7,
        status="optimal",
        solver="min_cost_flow",
        time_s=0.01,
        dry_run=True,
        proposals_by_pool={"CDC Habitat (paris, seine-saint-denis)": 2},
        waiting=1,
        candidates=3,
        worst_share_ratio=0.5,
        envy=2,
        envy_causes={"floor": 2},
    )
    names = {"paris": "Convergence Paris", "seine-saint-denis": "Convergence Seine-Saint-Denis"}
    summary = review.simulation_summary(report, "Convergence Paris", names)
    text = " ".join(summary.lines)
    assert summary.lines[0] == "Simulation (Convergence Paris) : rien n'a été enregistré ni envoyé."
    assert "2 nouvelles places seraient proposées ; 1 personne resterait en attente." in text
    assert "CDC Habitat (Paris, Seine-Saint-Denis) : 2 propositions." in text
    assert "Le territoire le moins servi aurait reçu 50 % de sa part" in text
    assert "2 personnes sont passées après" in text
    for jargon in ("min_cost_flow", "envie", "exécution", "n° 7"):
        assert jargon not in text
    assert ("Solveur", "min_cost_flow") in summary.technical

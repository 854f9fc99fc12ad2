"""The person's choices (/orientations/{id}/choix) and the families' mechanisms
(/attributions/mecanismes) in the browser's HTTP, on SQLite and PostgreSQL: who sees and who
records, CSRF, nothing changed on GET, attacker inputs answered in French (never a 5xx),
the stale-edit message, two CIP/ESP racing."""

from __future__ import annotations

import html
import re
import threading

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from engine.allocation import preferences as P
from engine.store import models as m
from engine.store.db import unit_of_work
from tests.integration.test_preferences import FAMILY, _family, _pools, _waiting
from tests.web.world import PASSWORD, World, csrf_of, login, world_per_database


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def site(request) -> World:
    yield from world_per_database(request, _family)


@pytest.fixture(scope="module")
def untouched(site) -> int:
    """One waiting referral shared by the tests that must write nothing on it."""
    return _waiting(site)


def _client(site: World, email: str) -> TestClient:
    client = TestClient(site.app, raise_server_exceptions=False)  # type: ignore[attr-defined]
    assert login(client, email).status_code == 303
    return client


@pytest.fixture(scope="module")
def who(site) -> dict[str, TestClient]:
    """Logged-in clients of the world's roles (the CIP of the world's target chantier is not
    the CIP of the referrals used here: ``_cip`` gives that one)."""
    return {key: _client(site, email) for key, email in site.emails.items()}


def _cip(site: World, rid: int, n: int = 1) -> TestClient:
    """A client of a CIP/ESP of the referral's chantier (the ``n``-th; made when missing)."""
    with unit_of_work(site.db) as s:
        chantier = s.get(m.Chantier, s.get(m.Referral, rid).chantier_id)
        cips = s.scalars(select(m.StaffUser).where(
            m.StaffUser.role == "cip", m.StaffUser.chantier_id == chantier.id,
            m.StaffUser.password_hash.is_not(None)).order_by(m.StaffUser.id)).all()  # fmt: skip
        while len(cips) < n:
            u = m.StaffUser(email=f"cip{len(cips) + 1}.{chantier.code}.{rid}@test.example",
                            display_name=f"CIP {len(cips) + 1}", role="cip",
                            chantier_id=chantier.id, created_at=site.clock.now(),
                            password_hash=PasswordHasher().hash(PASSWORD))  # fmt: skip
            s.add(u)
            s.flush()
            cips.append(u)
        email = cips[n - 1].email
    return _client(site, email)


def _text(page: str) -> str:
    main = page.split('id="contenu"', 1)[1] if 'id="contenu"' in page else page
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", main)).split())


def _trace(site: World, rid: int) -> tuple:  # type: ignore[type-arg]
    with site.db.sessions() as s:
        row = s.scalar(select(m.AllocationPreference.choices).where(
            m.AllocationPreference.referral_id == rid))  # fmt: skip
        events = s.scalar(select(func.count()).select_from(m.ReferralEvent).where(
            m.ReferralEvent.referral_id == rid))  # fmt: skip
        audits = s.scalar(select(func.count()).select_from(m.AuditLog).where(
            m.AuditLog.object_id == str(rid), m.AuditLog.action == P.AUDIT_ACTION))  # fmt: skip
        ref = s.get(m.Referral, rid)
        return row, events, audits, ref.state, ref.version


def _post(client: TestClient, rid: int, choices: list[str], *, mode: str = "choix",
          version: str | None = None, token: str | None = None):  # type: ignore[no-untyped-def]  # fmt: skip
    page = client.get(f"/orientations/{rid}/choix").text
    if version is None:
        version = re.search(r'name="version" value="(\d+)"', page).group(1)  # type: ignore[union-attr]
    data = {"csrf_token": token if token is not None else csrf_of(page), "version": version,
            "mode": mode, "choix": choices}  # fmt: skip
    return client.post(f"/orientations/{rid}/choix", data=data, follow_redirects=False)


# --- the page ---------------------------------------------------------------------------------


def test_the_page_lists_the_pools_in_reach_with_free_units_and_changes_nothing(site):
    rid = _waiting(site)
    pools = _pools(site)
    client = _cip(site, rid)
    before = _trace(site, rid)
    with site.db.sessions() as s:
        reads = s.scalar(select(func.count()).select_from(m.AccessLog).where(
            m.AccessLog.purpose == "choix de la personne"))  # fmt: skip
    page = client.get(f"/orientations/{rid}/choix")
    assert page.status_code == 200
    text = _text(page.text)
    assert "Bailleur d'essai (Paris) Bailleur d'essai Convergence Paris 2 logements" in text
    assert "Bailleur d'essai (Paris, Seine-Saint-Denis)" in text
    assert "Bailleur d'essai (Seine-Saint-Denis)" not in text  # out of reach
    assert "Toutes les places possibles : aucun choix exprimé" in text
    assert f'value="pool:{pools["paris"].id}"' in page.text
    assert f'value="pool:{pools["ssd"].id}"' not in page.text
    assert 'value="territoire:paris"' in page.text and 'name="version" value="1"' in page.text
    assert 'id="form-choix"' in page.text and csrf_of(page.text)
    assert _trace(site, rid) == before  # no change on GET, but the read is logged
    with site.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(m.AccessLog).where(
            m.AccessLog.purpose == "choix de la personne")) == reads + 1  # fmt: skip


@pytest.mark.parametrize(
    ("role", "status", "form"),
    [("coordinator", 200, True), ("admin", 200, True), ("officer", 200, False),
     ("cip_other", 404, False), ("partner", 404, False), ("officer_other_territory", 404, False),
     ("coordinator_other", 404, False), ("officer_other_domain", 404, False)],
)  # fmt: skip
def test_who_sees_the_page_and_who_gets_the_form(site, who, untouched, role, status, form):
    rid = untouched
    answer = who[role].get(f"/orientations/{rid}/choix")
    assert answer.status_code == status
    assert ('id="form-choix"' in answer.text) is form
    if status == 404:
        assert "n'existe pas ou vous n'y avez pas accès" in html.unescape(answer.text)
    block = who[role].get(f"/orientations/{rid}/choix/resume")
    assert block.status_code == status
    if role == "officer":
        assert "s'enregistrent par la ou le CIP / ESP du chantier" in _text(answer.text)


def test_anonymous_is_sent_to_the_login_page(site):
    anonymous = TestClient(site.app)  # type: ignore[attr-defined]
    answer = anonymous.get(f"/orientations/{site.target_id}/choix", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/connexion")


@pytest.mark.parametrize("path", ["/orientations/987654/choix", "/orientations/0/choix",
                                  "/orientations/abc/choix", f"/orientations/{2**40}/choix",
                                  "/orientations/987654/choix/resume"])  # fmt: skip
def test_absent_ids_are_the_same_404(site, who, path):
    assert who["admin"].get(path).status_code == 404


# --- recording --------------------------------------------------------------------------------


def test_a_cip_records_two_pools_in_order_and_the_case_page_shows_them(site):
    rid = _waiting(site)
    pools = _pools(site)
    client = _cip(site, rid)
    answer = _post(client, rid, [f"pool:{pools['paris'].id}", "", f"pool:{pools['shared'].id}"])
    assert answer.status_code == 303 and answer.headers["location"] == f"/orientations/{rid}#choix"
    row, *_ = _trace(site, rid)
    assert row == [{"pool": pools["paris"].id}, {"pool": pools["shared"].id}]
    case = client.get(f"/orientations/{rid}")
    assert "Choix de la personne enregistrés : 2 choix, dans l'ordre." in _text(case.text)
    assert (
        'id="bloc-choix"' in case.text and f'hx-get="/orientations/{rid}/choix/resume"' in case.text
    )
    assert f'href="/orientations/{rid}/choix"' in case.text
    block = _text(client.get(f"/orientations/{rid}/choix/resume").text)
    assert block.index("Bailleur d'essai (Paris)") < block.index("Bailleur d'essai (Paris, Seine")
    page = client.get(f"/orientations/{rid}/choix").text
    first_select = page.split('id="choix-1"')[1].split("</select>")[0]
    assert f'<option value="pool:{pools["paris"].id}" selected>' in first_select
    assert 'name="version" value="2"' in page


def test_toutes_les_places_possibles_removes_the_choices(site):
    rid = _waiting(site)
    client = _cip(site, rid)
    _post(client, rid, ["territoire:paris"])
    assert _trace(site, rid)[0] == [{"territory": "paris"}]
    answer = _post(client, rid, [], mode="toutes")
    assert answer.status_code == 303
    assert _trace(site, rid)[0] is None
    assert "Toutes les places possibles : aucun choix exprimé" in _text(
        client.get(f"/orientations/{rid}/choix/resume").text)  # fmt: skip


HOSTILE = [
    (["pool:987654"], 422, "dispositif inconnu (n° 987654)"),
    (["pool:abc"], 422, "choix n° 1 : dispositif inconnu"),
    ([f"pool:{'9' * 40}"], 422, "choix n° 1 : dispositif inconnu"),
    (["territoire:atlantide"], 422, "territoire inconnu « atlantide »"),
    (["n'importe quoi"], 422, "choix n° 1 illisible"),
    (["territoire:paris", "territoire:paris"], 422, "choix n° 2 en double"),
    (["territoire:paris"] * 21, 422, "trop de choix : 20 au plus (21 reçus)"),
    (["SSD"], 422, "ne peut pas accueillir cette orientation"),
    (["pool:1\x00"], 422, "Saisie refusée"),
    (["x" * 2_000_000], 413, "Envoi trop volumineux"),
]


@pytest.mark.parametrize(("choices", "status", "words"), HOSTILE)
def test_attacker_inputs_get_a_french_4xx_and_nothing_is_written(
    site, untouched, choices, status, words
):
    rid = untouched
    if choices == ["SSD"]:
        choices = [f"pool:{_pools(site)['ssd'].id}"]
    client = _cip(site, rid)
    before = _trace(site, rid)
    answer = _post(client, rid, choices)
    assert answer.status_code == status, answer.text[:300]
    assert words in html.unescape(answer.text)
    assert _trace(site, rid) == before
    if status == 422 and "Saisie" not in words:  # the page again, with what was sent
        assert "Choix non enregistrés" in _text(answer.text) and 'id="form-choix"' in answer.text


def test_a_form_without_its_csrf_token_changes_nothing(site, untouched):
    rid = untouched
    client = _cip(site, rid)
    before = _trace(site, rid)
    answer = _post(client, rid, ["territoire:paris"], token="")
    assert answer.status_code == 403 and "Formulaire refusé" in answer.text
    assert _post(client, rid, ["territoire:paris"], token="forged").status_code == 403
    assert _trace(site, rid) == before


def test_a_stale_page_gets_the_apps_stale_edit_message(site):
    rid = _waiting(site)
    client = _cip(site, rid)
    assert _post(client, rid, ["territoire:paris"]).status_code == 303
    before = _trace(site, rid)
    for version in ("1", "", "abc", "-1", "9" * 30):
        answer = _post(client, rid, [f"pool:{_pools(site)['paris'].id}"], version=version)
        assert answer.status_code == 409
        assert "modifiée par quelqu'un d'autre pendant que vous la consultiez" in _text(answer.text)
    assert _trace(site, rid) == before


def test_two_cips_saving_at_once_one_wins_the_other_is_told_to_reload(site):
    rid = _waiting(site)
    pools = _pools(site)
    clients = [_cip(site, rid, 1), _cip(site, rid, 2)]
    forms = []
    for client, pool in zip(clients, ("paris", "shared"), strict=True):
        page = client.get(f"/orientations/{rid}/choix").text
        forms.append({"csrf_token": csrf_of(page), "version": "1", "mode": "choix",
                      "choix": [f"pool:{pools[pool].id}"]})  # fmt: skip
    barrier = threading.Barrier(2)
    answers: list = []  # type: ignore[type-arg]

    def save(client: TestClient, form: dict) -> None:  # type: ignore[type-arg]
        barrier.wait()
        answers.append(client.post(f"/orientations/{rid}/choix", data=form, follow_redirects=False))

    threads = [
        threading.Thread(target=save, args=pair) for pair in zip(clients, forms, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(a.status_code for a in answers)
    assert codes == [303, 409], codes
    loser = next(a for a in answers if a.status_code == 409)
    assert "Rechargez la page" in _text(loser.text)
    row, events, audits, *_ = _trace(site, rid)
    assert audits == 1 and row in ([{"pool": pools["paris"].id}], [{"pool": pools["shared"].id}])


@pytest.mark.parametrize(("role", "status", "words"),
                         [("officer", 403, "Action refusée"), ("cip_other", 404, "n'existe pas"),
                          ("partner", 404, "n'existe pas"), ("officer_other_territory", 404, "n'existe pas")])  # fmt: skip
def test_who_may_not_record(site, who, untouched, role, status, words):
    rid = untouched
    before = _trace(site, rid)
    token = csrf_of(who[role].get("/preferences").text)
    answer = who[role].post(f"/orientations/{rid}/choix", follow_redirects=False,
                            data={"csrf_token": token, "version": "1", "choix": "territoire:paris"})  # fmt: skip
    assert answer.status_code == status and words in html.unescape(answer.text)
    assert _trace(site, rid) == before


def test_a_referral_not_waiting_shows_no_form_and_refuses_a_post(site, who):
    rid = site.target_id  # referred to a partner
    page = who["admin"].get(f"/orientations/{rid}/choix")
    assert page.status_code == 200 and 'id="form-choix"' not in page.text
    assert "n'attend pas de place" in _text(page.text)
    assert 'id="bloc-choix"' not in who["admin"].get(f"/orientations/{rid}").text
    answer = _post(who["admin"], rid, ["territoire:paris"], version="1")
    assert answer.status_code == 422 and "n'attend pas de place" in html.unescape(answer.text)


# --- mechanisms -------------------------------------------------------------------------------


def _family_id(site: World) -> int:
    with site.db.sessions() as s:
        return s.scalar(select(m.Offer.id).where(m.Offer.code == FAMILY))


def _mechanism(site: World, oid: int) -> str:
    with site.db.sessions() as s:
        return s.get(m.Offer, oid).allocation_mechanism


def _set(client: TestClient, data: dict, token: str | None = None):  # type: ignore[no-untyped-def,type-arg]
    token = token if token is not None else csrf_of(client.get("/preferences").text)
    return client.post("/attributions/mecanismes", data={"csrf_token": token, **data},
                       follow_redirects=False)  # fmt: skip


def test_the_national_page_explains_both_mechanisms_and_lists_each_family(site, who):
    page = who["admin"].get("/attributions/mecanismes")
    assert page.status_code == 200
    text = _text(page.text)
    assert (
        "optimal : le plus de points servis au total, les choix exprimés servent de conditions"
        in text
    )
    assert ("stable : personne ne peut préférer une place qui l'aurait préférée(e) — acceptation "
            "différée, les personnes proposent") in text  # fmt: skip
    with site.db.sessions() as s:
        families = s.scalar(select(func.count(func.distinct(m.SlotPool.offer_id))))
    assert page.text.count('action="/attributions/mecanismes"') == families
    assert "Bailleur d'essai — Logement d'essai" in text and "(contingent en commission)" in text
    coordinator = who["coordinator"].get("/attributions/mecanismes")
    assert coordinator.status_code == 200
    assert 'action="/attributions/mecanismes"' not in coordinator.text
    assert "choisi par l'équipe nationale" in coordinator.text
    for role in ("officer", "cip", "partner"):
        assert who[role].get("/attributions/mecanismes").status_code == 404


def test_the_national_team_changes_a_family_mechanism(site, who):
    oid = _family_id(site)
    answer = _set(
        who["admin"], {"offer_id": str(oid), "mechanism": "stable", "expected": "optimal"}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/attributions/mecanismes"
    assert _mechanism(site, oid) == "stable"
    page = who["admin"].get("/attributions/mecanismes").text
    assert "Mécanisme enregistré pour « Logement d'essai » : stable." in html.unescape(page)
    row = page.split(f'<tr id="famille-{oid}">')[1].split("</tr>")[0]
    assert '<td class="mechanism">Stable</td>' in row
    again = _set(who["admin"], {"offer_id": str(oid), "mechanism": "stable", "expected": "stable"})
    assert again.status_code == 303
    assert "Aucun changement" in html.unescape(who["admin"].get("/attributions/mecanismes").text)
    stale = _set(
        who["admin"], {"offer_id": str(oid), "mechanism": "optimal", "expected": "optimal"}
    )
    assert stale.status_code == 409 and "Rechargez la page" in html.unescape(stale.text)
    with site.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(m.AuditLog).where(
            m.AuditLog.action == P.MECHANISM_AUDIT_ACTION, m.AuditLog.object_id == str(oid))) == 1  # fmt: skip
    assert _set(who["admin"], {"offer_id": str(oid), "mechanism": "optimal"}).status_code == 303
    assert _mechanism(site, oid) == "optimal"


@pytest.mark.parametrize(
    ("role", "data", "status", "words"),
    [("coordinator", {"mechanism": "stable"}, 403, "Action refusée"),
     ("officer", {"mechanism": "stable"}, 404, "n'existe pas"),
     ("cip", {"mechanism": "stable"}, 404, "n'existe pas"),
     ("partner", {"mechanism": "stable"}, 404, "n'existe pas"),
     ("admin", {"mechanism": "boston"}, 422, "mécanisme inconnu"),
     ("admin", {"mechanism": "stable\x00"}, 422, "Saisie refusée"),
     ("admin", {"mechanism": "stable", "offer_id": "abc"}, 404, "n'existe pas"),
     ("admin", {"mechanism": "stable", "offer_id": "0"}, 404, "n'existe pas"),
     ("admin", {"mechanism": "stable", "offer_id": "9" * 30}, 404, "n'existe pas"),
     ("admin", {"mechanism": "stable", "offer_id": "987654"}, 404, "n'existe pas")],
)  # fmt: skip
def test_mechanism_changes_refused(site, who, role, data, status, words):
    oid = _family_id(site)
    answer = _set(who[role], {"offer_id": str(oid), **data})
    assert answer.status_code == status and words in html.unescape(answer.text)
    assert _mechanism(site, oid) == "optimal"


def test_a_mechanism_form_without_csrf_changes_nothing(site, who):
    oid = _family_id(site)
    assert (
        _set(who["admin"], {"offer_id": str(oid), "mechanism": "stable"}, token="").status_code
        == 403
    )
    assert _mechanism(site, oid) == "optimal"


SWEEP = [
    str(2**63),
    str(-(2**63) - 1),
    "0",
    "-1",
    "1e9",
    "a\x00b",
    "%00",
    "pool:1",
    "x" * 1_000_000,
]
ROUTES = [("GET", "/orientations/{}/choix"), ("GET", "/orientations/{}/choix/resume"),
          ("POST", "/orientations/{}/choix"), ("GET", "/attributions/mecanismes"),
          ("POST", "/attributions/mecanismes")]  # fmt: skip


@pytest.mark.parametrize("role", ["admin", "cip"])
def test_hostile_ids_and_fields_on_these_routes_never_answer_5xx(site, who, untouched, role):
    from urllib.parse import quote

    client = _cip(site, untouched) if role == "cip" else who["admin"]
    token = csrf_of(client.get("/preferences").text)
    before = _trace(site, untouched)
    mechanisms = dict(mechanism_rows(site))
    seen = []
    for method, path in ROUTES:
        for value in SWEEP:
            short = value[:1500]
            targets = (
                [path.format(quote(short, safe="")), path.format(untouched)]
                if "{}" in path
                else [path]
            )
            for url in targets:
                if method == "GET":
                    seen.append(
                        (url[:60], client.get(f"{url}?version={quote(short, safe='')}").status_code)
                    )
                    continue
                form = {
                    k: value
                    for k in ("choix", "mode", "version", "offer_id", "mechanism", "expected")
                }
                answer = client.post(
                    url, data={**form, "csrf_token": token}, follow_redirects=False
                )
                seen.append((url[:60], answer.status_code))
    assert seen and not [s for s in seen if s[1] >= 500], [s for s in seen if s[1] >= 500][:5]
    assert {code for _, code in seen} <= {200, 303, 403, 404, 409, 413, 422}
    assert _trace(site, untouched) == before
    assert dict(mechanism_rows(site)) == mechanisms


def mechanism_rows(site: World) -> list[tuple[int, str]]:
    with site.db.sessions() as s:
        return list(s.execute(select(m.Offer.id, m.Offer.allocation_mechanism)).all())  # type: ignore[arg-type]

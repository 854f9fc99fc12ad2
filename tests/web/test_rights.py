"""The person's rights in the browser, on SQLite and PostgreSQL: the national admin finds a
person, exports all that is held (JSON and a French page), rectifies the identity, erases the
file after a typed confirmation — each logged; every other role gets a 404; hostile input a
4xx; a file under legal hold is not erased; the territories' retention stays within 1–36."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from engine.store import models as m
from engine.store.db import unit_of_work
from tests.web.world import World, csrf_of, login, waitlist_some, world_per_database

OTHER_ROLES = ("coordinator", "officer", "cip", "partner", "officer_other_territory")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def rights(request) -> World:
    yield from world_per_database(request)


def _client(world: World, key: str = "admin") -> TestClient:
    client = TestClient(world.app, raise_server_exceptions=False)  # type: ignore[attr-defined]
    assert login(client, world.emails[key]).status_code == 303
    return client


def _unused_person(world: World, *, with_referral: bool = True) -> int:
    """A person of the seed no other test of this module touched (with a referral)."""
    used = world.__dict__.setdefault("rights_used", set())
    with unit_of_work(world.db) as s:
        target = s.get(m.Referral, world.target_id).salarie_id
        q = (
            select(m.Salarie.id)
            .where(m.Salarie.anonymised_at.is_(None))
            .order_by(m.Salarie.id.desc())
        )
        if with_referral:
            q = q.where(
                m.Salarie.id.in_(select(m.Referral.salarie_id).where(m.Referral.state == "new"))
            )
        for sid in s.scalars(q):
            if sid not in used and sid != target:
                used.add(sid)
                return sid
    raise AssertionError("no person left")


def _log_rows(world: World, sid: int, purpose: str) -> int:
    with unit_of_work(world.db) as s:
        return int(s.scalar(select(func.count()).select_from(m.AccessLog)
                            .where(m.AccessLog.salarie_id == sid, m.AccessLog.purpose == purpose)))  # fmt: skip


def _note(world: World, sid: int, body: str) -> None:
    from engine.referrals.notes import add_note

    with unit_of_work(world.db) as s:
        rid = s.scalar(
            select(m.Referral.id).where(m.Referral.salarie_id == sid).order_by(m.Referral.id)
        )
        cip = s.scalar(select(m.StaffUser).where(m.StaffUser.role == "cip",
                                                 m.StaffUser.chantier_id == s.get(m.Salarie, sid).chantier_id))  # fmt: skip
        if cip is None:
            cip = s.scalar(select(m.StaffUser).where(m.StaffUser.role == "national_admin"))
        add_note(s, cip, rid, body, clock=world.clock)


def test_the_admin_finds_a_person_by_reference_or_name_and_each_match_is_logged(rights):
    sid = _unused_person(rights)
    with unit_of_work(rights.db) as s:
        ref = s.get(m.Salarie, sid).reference
        ident = s.get(m.SalarieIdentity, sid)
    client = _client(rights)
    page = client.get("/droits", params={"reference": ref.lower()})
    assert (
        page.status_code == 200 and ident.last_name in page.text and f"/droits/{sid}" in page.text
    )
    assert _log_rows(rights, sid, "droits : recherche") == 1
    page = client.get("/droits", params={"nom": ident.last_name.upper(), "prenom": ident.first_name,
                                         "naissance": ident.birth_date.isoformat()})  # fmt: skip
    assert page.status_code == 200 and f"/droits/{sid}" in page.text
    assert "1 personne trouvée" in page.text
    assert client.get("/droits", params={"nom": "Zzzyx"}).text.count("Aucune personne") == 1
    bad = client.get("/droits", params={"nom": "a\x00b"})
    assert bad.status_code == 422 and "Saisie refusée" in bad.text
    assert (
        client.get("/droits", params={"naissance": "31/02/1980", "nom": "Martin"}).status_code
        == 422
    )
    assert client.get("/droits", params={"nom": "x" * 5000}).status_code == 422


def test_the_export_holds_everything_in_french_json_and_html_and_is_logged(rights):
    sid = _unused_person(rights)
    _note(rights, sid, "Rendez-vous pris à la CPAM.")
    client = _client(rights)
    page = client.get(f"/droits/{sid}")
    assert page.status_code == 200
    with unit_of_work(rights.db) as s:
        person = s.get(m.Salarie, sid)
        ident = s.get(m.SalarieIdentity, sid)
        n_refs = s.scalar(
            select(func.count()).select_from(m.Referral).where(m.Referral.salarie_id == sid)
        )
    for text in (person.reference, ident.last_name, ident.first_name, "Freins", "Orientations",
                 "Rendez-vous pris à la CPAM.", "Consultations du dossier", "Télécharger le fichier JSON"):  # fmt: skip
        assert text in page.text, text
    answer = client.get(f"/droits/{sid}/export.json")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith(
        "application/json"
    )
    assert f'filename="donnees-{person.reference}.json"' in answer.headers["content-disposition"]
    assert answer.headers["cache-control"] == "no-store"
    data = json.loads(answer.text)
    assert data["identite"]["nom"] == ident.last_name
    assert data["identite"]["courriel"] == ident.email
    assert data["identite"]["date_de_naissance"] == ident.birth_date.isoformat()
    assert len(data["orientations"]) == n_refs and data["orientations"][0]["historique"]
    assert data["notes"][0]["texte"] == "Rendez-vous pris à la CPAM."
    assert {"freins", "parcours", "courriels_a_son_sujet", "journal_des_acces",
            "journal_des_modifications", "propositions_de_place"} <= set(data)  # fmt: skip
    assert any(a["motif"] == "droits : export" for a in data["journal_des_acces"])  # the page read
    assert _log_rows(rights, sid, "droits : export") == 2
    with unit_of_work(rights.db) as s:
        audits = s.scalar(select(func.count()).select_from(m.AuditLog).where(
            m.AuditLog.action == "rights_export", m.AuditLog.object_id == str(sid)))  # fmt: skip
    assert audits == 2


def test_rectification_checks_every_field_and_the_audit_names_fields_not_values(rights):
    sid = _unused_person(rights)
    client = _client(rights)
    form = client.get(f"/droits/{sid}/rectification")
    assert form.status_code == 200
    token = csrf_of(form.text)
    with unit_of_work(rights.db) as s:
        before = s.get(m.SalarieIdentity, sid)
        before = (
            before.last_name,
            before.first_name,
            before.birth_date,
            before.phone,
            before.email,
        )
    good = {"csrf_token": token, "last_name": "Nouveau-Nom", "first_name": before[1],
            "birth_date": "1984-05-06", "phone": "06 12 34 56 78", "email": "nouveau@exemple.fr"}  # fmt: skip
    for field, value in (("last_name", ""), ("last_name", "a\x07b"), ("last_name", "x" * 201),
                         ("birth_date", "1984-13-01"), ("birth_date", "2999-01-01"),
                         ("phone", "appelez-moi"), ("email", "pas-une-adresse")):  # fmt: skip
        bad = client.post(f"/droits/{sid}/rectification", data={**good, field: value})
        assert bad.status_code == 422 and "Rectification refusée" in bad.text, (field, value)
    nul = client.post(f"/droits/{sid}/rectification", data={**good, "last_name": "a\x00b"})
    assert nul.status_code == 422  # refused at the edge, before the form is read
    with unit_of_work(rights.db) as s:
        now = s.get(m.SalarieIdentity, sid)
        assert (now.last_name, now.first_name, now.birth_date, now.phone, now.email) == before
    done = client.post(f"/droits/{sid}/rectification", data=good, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/droits/{sid}"
    assert "Identité rectifiée" in client.get(f"/droits/{sid}").text
    with unit_of_work(rights.db) as s:
        now = s.get(m.SalarieIdentity, sid)
        assert (now.last_name, now.email, now.phone) == (
            "Nouveau-Nom",
            "nouveau@exemple.fr",
            "06 12 34 56 78",
        )
        audit = s.scalar(select(m.AuditLog).where(m.AuditLog.action == "rights_rectify",
                                                  m.AuditLog.object_id == str(sid)))  # fmt: skip
        assert "last_name" in audit.details["fields"] and "Nouveau-Nom" not in json.dumps(
            audit.details
        )
    assert _log_rows(rights, sid, "droits : rectification") >= 2  # the form read, the write
    assert (
        client.post(f"/droits/{sid}/rectification", data={**good, "csrf_token": "faux"}).status_code
        == 403
    )


def test_erasure_needs_the_typed_reference_then_leaves_only_the_skeleton(rights):
    sid = _unused_person(rights)
    _note(rights, sid, "Personne hébergée chez sa sœur.")
    client = _client(rights)
    page = client.get(f"/droits/{sid}/effacement")
    assert page.status_code == 200 and "Cette opération est définitive" in page.text
    token = csrf_of(page.text)
    with unit_of_work(rights.db) as s:
        person = s.get(m.Salarie, sid)
        reference, ident = person.reference, s.get(m.SalarieIdentity, sid)
        name, email = ident.last_name, ident.email
        states = dict(
            s.execute(
                select(m.Referral.id, m.Referral.state).where(m.Referral.salarie_id == sid)
            ).all()
        )
    wrong = client.post(
        f"/droits/{sid}/effacement", data={"csrf_token": token, "confirmation": "SAL-XXXXXX"}
    )
    assert (
        wrong.status_code == 422 and f"saisissez exactement la référence {reference}" in wrong.text
    )
    with unit_of_work(rights.db) as s:
        assert s.get(m.SalarieIdentity, sid) is not None
    done = client.post(f"/droits/{sid}/effacement", data={"csrf_token": token, "confirmation": reference.lower()},
                       follow_redirects=False)  # fmt: skip
    assert done.status_code == 303
    after = client.get(f"/droits/{sid}").text
    assert (
        "Dossier anonymisé" in after
        and "Aucune identité n'est conservée" in after
        and name not in after
    )
    with unit_of_work(rights.db) as s:
        person = s.get(m.Salarie, sid)
        assert person.anonymised_at is not None and person.reference == f"ANO-{sid}"
        assert s.get(m.SalarieIdentity, sid) is None
        assert not s.scalar(
            select(func.count()).select_from(m.CaseNote).where(m.CaseNote.salarie_id == sid)
        )
        assert dict(s.execute(select(m.Referral.id, m.Referral.state)
                              .where(m.Referral.salarie_id == sid)).all()) == states  # fmt: skip
        audit = s.scalar(select(m.AuditLog).where(m.AuditLog.action == "rights_erase",
                                                  m.AuditLog.object_id == str(sid)))  # fmt: skip
        assert audit.details["people"] == 1 and audit.details["identities"] == 1
        assert audit.details["notes"] == 1
        for table in m.Base.metadata.sorted_tables:
            blob = "\n".join(repr(tuple(r)) for r in s.execute(select(table)).all())
            assert reference not in blob and email not in blob, table.name
    assert _log_rows(rights, sid, "droits : effacement") == 1
    again = client.post(
        f"/droits/{sid}/effacement", data={"csrf_token": token, "confirmation": reference}
    )
    assert again.status_code == 422 and "déjà anonymisé" in again.text
    assert client.get(f"/droits/{sid}/rectification").status_code == 200  # says: nothing to rectify
    # Nothing can be added to the skeleton: no note, no frein, no pathway fact.
    from datetime import timedelta

    from engine.domain.errors import ANONYMISED, Refused
    from engine.domain.vocabulary import HOUSING
    from engine.intake.freins import add_frein
    from engine.pathway.facts import Recorder, record_housing_change
    from engine.referrals.notes import add_note
    from matching.rules import load_rules

    with unit_of_work(rights.db) as s:
        admin = s.scalar(select(m.StaffUser).where(m.StaffUser.role == "national_admin"))
        rid = s.scalar(select(m.Referral.id).where(m.Referral.salarie_id == sid).limit(1))
        day = rights.clock.today() - timedelta(days=1)
        attempts = [
            lambda: add_note(s, admin, rid, "Nouvelle note", clock=rights.clock),
            lambda: add_frein(s, admin, sid, "logement", clock=rights.clock,
                              rules=load_rules(rights.settings.rules_file).routing),
            lambda: record_housing_change(s, Recorder.of(admin), sid, after=HOUSING[0],
                                          on=day, clock=rights.clock),
        ]  # fmt: skip
        for attempt in attempts:
            with pytest.raises(Refused) as refused:
                attempt()
            assert str(refused.value) == ANONYMISED


def test_a_file_under_legal_hold_is_not_erased(rights):
    waiting = waitlist_some(rights, 1)
    assert waiting, "no referral could be waitlisted"
    with unit_of_work(rights.db) as s:
        sid = s.get(m.Referral, waiting[0]).salarie_id
        reference = s.get(m.Salarie, sid).reference
    client = _client(rights)
    page = client.get(f"/droits/{sid}/effacement")
    assert "Ce dossier est conservé" in page.text
    token = csrf_of(page.text)
    refused = client.post(
        f"/droits/{sid}/effacement", data={"csrf_token": token, "confirmation": reference}
    )
    assert refused.status_code == 422 and "attend une place comptée" in refused.text
    with unit_of_work(rights.db) as s:
        assert (
            s.get(m.SalarieIdentity, sid) is not None
            and s.get(m.Salarie, sid).anonymised_at is None
        )


@pytest.mark.parametrize("role", OTHER_ROLES)
def test_every_other_role_gets_a_404(rights, role):
    sid = rights.__dict__.setdefault("probe", _unused_person(rights))
    client = _client(rights, role)
    token = csrf_of(client.get("/preferences").text)
    for path in ("/droits", "/droits?reference=SAL-AAAAAA", f"/droits/{sid}",
                 f"/droits/{sid}/export.json", f"/droits/{sid}/rectification",
                 f"/droits/{sid}/effacement", "/droits/conservation"):  # fmt: skip
        assert client.get(path).status_code == 404, path
    for path, data in ((f"/droits/{sid}/rectification", {"last_name": "X", "first_name": "Y"}),
                       (f"/droits/{sid}/effacement", {"confirmation": "x"}),
                       ("/droits/conservation", {"territoire": "paris", "mois": "3"})):  # fmt: skip
        assert client.post(path, data={"csrf_token": token, **data}).status_code == 404, path
    assert 'href="/droits"' not in client.get("/preferences").text  # no menu entry
    expected = 200 if role == "cip" else 404
    assert client.get("/dossiers/anonymisation").status_code == expected
    with unit_of_work(rights.db) as s:
        assert s.get(m.SalarieIdentity, sid) is not None
        assert (
            s.scalar(select(m.Territory.retention_months).where(m.Territory.code == "paris"))
            is None
        )
    anonymous = TestClient(rights.app)  # type: ignore[attr-defined]
    assert anonymous.get(f"/droits/{sid}", follow_redirects=False).status_code == 303


def test_hostile_ids_and_bodies_get_4xx_never_5xx(rights):
    client = _client(rights)
    token = csrf_of(client.get("/droits").text)
    for bad in ("0", "-1", str(2**31), str(2**63), "abc", "1e3", "%00"):
        expected = 422 if bad == "%00" else 404  # a NUL byte is refused at the edge
        for path in (f"/droits/{bad}", f"/droits/{bad}/export.json", f"/droits/{bad}/effacement"):
            assert client.get(path).status_code == expected, path
        answer = client.post(
            f"/droits/{bad}/effacement", data={"csrf_token": token, "confirmation": "x"}
        )
        assert answer.status_code == expected
    assert client.get(f"/droits/{m.MAX_ID}").status_code == 404  # in range, missing
    huge = client.post("/droits/conservation", content=b"x" * 2_000_000,
                       headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert huge.status_code == 413
    sid = _unused_person(rights)
    for data in (
        {"last_name": "\x00", "first_name": "A"},
        {"last_name": "A" * 100_000, "first_name": "B"},
    ):
        answer = client.post(f"/droits/{sid}/rectification", data={"csrf_token": token, **data})
        assert 400 <= answer.status_code < 500


def test_the_territories_retention_is_set_within_one_to_thirty_six_months(rights):
    client = _client(rights)
    page = client.get("/droits/conservation")
    assert page.status_code == 200 and "Durée nationale (24 mois)" in page.text
    token = csrf_of(page.text)
    for months in ("0", "37", "abc", "-2", "1\x07", "9" * 50):
        bad = client.post(
            "/droits/conservation",
            data={"csrf_token": token, "territoire": "paris", "mois": months},
        )
        assert bad.status_code == 422 and "Modification refusée" in bad.text, months
    unknown = client.post(
        "/droits/conservation", data={"csrf_token": token, "territoire": "atlantide", "mois": "3"}
    )
    assert unknown.status_code == 422 and "inconnu" in unknown.text
    ok = client.post("/droits/conservation", data={"csrf_token": token, "territoire": "lyon", "mois": "12"},
                     follow_redirects=False)  # fmt: skip
    assert ok.status_code == 303
    assert "12 mois" in client.get("/droits/conservation").text
    with unit_of_work(rights.db) as s:
        assert (
            s.scalar(select(m.Territory.retention_months).where(m.Territory.code == "lyon")) == 12
        )
    cleared = client.post("/droits/conservation", data={"csrf_token": token, "territoire": "lyon", "mois": ""},
                          follow_redirects=False)  # fmt: skip
    assert cleared.status_code == 303
    with unit_of_work(rights.db) as s:
        assert (
            s.scalar(select(m.Territory.retention_months).where(m.Territory.code == "lyon")) is None
        )
        assert (
            s.scalar(
                select(func.count())
                .select_from(m.AuditLog)
                .where(m.AuditLog.action == "set_retention")
            )
            == 2
        )


def test_the_cip_sees_the_files_of_their_chantier_announced_for_anonymisation(rights):
    from datetime import timedelta

    from engine.retention.run import run_retention

    # Everyone's last contact is the seed's day: 30 days later, with one month in Paris and
    # a notice period of 30 days, the Paris chantiers' files are announced.
    with unit_of_work(rights.db) as s:
        cip = s.scalar(select(m.StaffUser).where(m.StaffUser.email == rights.emails["cip"]))
        chantier = s.get(m.Chantier, cip.chantier_id)
        territory = s.get(m.Territory, chantier.territory_id)
        territory.retention_months = 1
    from engine.domain.clock import Clock

    later = Clock.on_day(rights.clock.today() + timedelta(days=20), running=False)
    report = run_retention(rights.db, rights.settings, clock=later)
    assert report.noticed > 0
    client = _client(rights, "cip")
    page = client.get("/dossiers/anonymisation")
    assert page.status_code == 200
    with unit_of_work(rights.db) as s:
        mine = s.scalars(select(m.Salarie.reference).where(m.Salarie.chantier_id == chantier.id,
                                                           m.Salarie.anonymised_at.is_(None))).all()  # fmt: skip
        others = s.scalars(select(m.Salarie.reference).where(m.Salarie.chantier_id != chantier.id)
                           .limit(50)).all()  # fmt: skip
        territory = s.get(m.Territory, chantier.territory_id)
        territory.retention_months = None
    assert any(ref in page.text for ref in mine)
    assert not any(ref in page.text for ref in others)

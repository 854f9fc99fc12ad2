"""``aiguillage import services``: data·inclusion services as offers, on SQLite and PostgreSQL.

The files are built from the schema package's own models (``partners.data_inclusion_fixtures``),
never downloaded: a valid export of several thousand services, and exports with each kind of
error, which must give exit 2, a French report naming the row and the field, and write
nothing. Then what the imported offers do: re-import, withdrawal, routing (fresh before
stale), local rules and pools an import keeps, the mail only to a public address, the pages.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

import pytest
from data_inclusion.schema import v1
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from engine.directory.local import add_rule, tie_pool
from engine.directory.orientation import record_orientation
from engine.directory.services_import import code_of, import_services
from engine.domain.clock import Clock
from engine.domain.errors import Refused
from engine.intake.run import load_network, run_intake
from engine.network.reference import reference_2024
from engine.network.seed import DEMO_PASSWORD, MAIL_DOMAIN, seed_network
from engine.referrals.actions import Actor, transition
from engine.store import models as m
from engine.store.db import unit_of_work
from engine.store.settings import Settings
from matching.rules import load_rules
from partners.data_inclusion_fixtures import (
    generate_services,
    service_rows,
    services_csv,
    services_json,
)
from web.app import create_app
from workflows.cli import app

TODAY = date(2026, 11, 26)
CLOCK = Clock.on_day(TODAY, running=False)
TERRITORIES = {t["code"]: t["departments"] for t in reference_2024()["territories"]}
# Several thousand valid services, built once for the module (deterministic).
BIG = generate_services(3000, seed=7, today=TODAY, territories=TERRITORIES)
SMALL = service_rows(generate_services(40, seed=11, today=TODAY, territories=TERRITORIES))


def _counts(db) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with db.sessions() as s:
        return {
            t.__tablename__: s.scalar(select(func.count()).select_from(t)) or 0
            for t in (m.ImportedService, m.Partner, m.Offer, m.AuditLog, m.SlotPool)
        }


def _snapshot(db) -> list[tuple]:  # type: ignore[no-untyped-def]
    S = m.ImportedService
    with db.sessions() as s:
        return [
            tuple(r)
            for r in s.execute(
                select(S.key, S.digest, S.updated_at, S.withdrawn_at, m.Partner.name,
                       m.Partner.contact_email, m.Offer.name)
                .join(m.Partner, m.Partner.id == S.partner_id)
                .join(m.Offer, m.Offer.id == S.offer_id)
                .order_by(S.key)
            )
        ]  # fmt: skip


@pytest.fixture
def seeded(db):
    seed_network(db, scale=0.02, seed=1, clock=CLOCK)
    return db


@pytest.fixture
def cli(seeded, monkeypatch):
    monkeypatch.setenv("AIGUILLAGE_DATABASE_URL", seeded.url)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [*args, "--today", TODAY.isoformat()])


def _write(tmp_path, name: str, body: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(body)
    return str(path)


# --- a valid file, re-imported ------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_valid_export_imports_then_reimport_changes_nothing(cli, seeded, tmp_path, fmt):
    body = services_json(BIG) if fmt == "json" else services_csv(BIG)
    path = _write(tmp_path, f"services.{fmt}", body)
    before = _counts(seeded)
    first = cli("import", "services", path)
    assert first.exit_code == 0, first.output
    after = _counts(seeded)
    stored = after["imported_service"]
    # Every service whose zone reaches a territory (or France) is stored, the rest counted.
    assert 2500 < stored < 3000
    assert after["partner"] == before["partner"] + stored
    assert after["offer"] == before["offer"] + stored
    assert f"Services lus : 3000 ; retenus pour le réseau : {stored}" in first.output
    assert f"Créés : {stored}, mis à jour : 0, inchangés : 0" in first.output
    assert f"Non retenus : {3000 - stored} hors des territoires" in first.output
    snapshot = _snapshot(seeded)
    again = cli("import", "services", path)
    assert again.exit_code == 0, again.output
    assert f"Créés : 0, mis à jour : 0, inchangés : {stored}, réapparus : 0, retirés : 0" in (
        again.output
    )
    assert _snapshot(seeded) == snapshot  # not even a timestamp moved
    counts = _counts(seeded)
    assert {k: v for k, v in counts.items() if k != "audit_log"} == {
        k: v for k, v in after.items() if k != "audit_log"
    }


def test_a_service_keeps_its_fields_territories_and_contact(seeded):
    rows = [dict(SMALL[0]), dict(SMALL[1])]
    rows[0].update(zone_eligibilite=["69123"], courriel="accueil@example.org",
                   thematiques=["sante--addictions", "creer-une-entreprise--developper-son-entreprise"])  # fmt: skip
    rows[1].update(zone_eligibilite=["france"], thematiques=["logement-hebergement--louer-un-logement"])  # fmt: skip
    rows[1].pop("courriel", None)
    outcome = import_services(seeded, services_json(rows), filename="s.json", clock=CLOCK)
    assert outcome.ok, outcome.report
    with seeded.sessions() as s:
        services = {x.key: x for x in s.scalars(select(m.ImportedService))}
        lyon = services[rows[0]["id"]]
        partner, offer = s.get(m.Partner, lyon.partner_id), s.get(m.Offer, lyon.offer_id)
        assert partner.coverage == ["lyon"] and partner.contact_email == "accueil@example.org"
        assert partner.domain == "sante" and offer.code == code_of(lyon.key)
        # Only the network's thématiques are routed; the others are kept to show.
        assert offer.thematiques == ["sante--addictions"]
        assert "creer-une-entreprise--developper-son-entreprise" in lyon.thematiques
        assert lyon.details["zone"] == ["69123"] and lyon.territories == "|lyon|"
        national = services[rows[1]["id"]]
        assert s.get(m.Partner, national.partner_id).coverage is None
        assert s.get(m.Partner, national.partner_id).contact_email is None
        assert national.territories == "*"


# --- each kind of error: exit 2, the row and the field, nothing written ------------------


def _broken(index: int, **changes) -> list[dict]:  # type: ignore[no-untyped-def]
    rows = [dict(r) for r in SMALL]
    for key, value in changes.items():
        if value is None:
            rows[index].pop(key, None)
        else:
            rows[index][key] = value
    return rows


CASES = [
    ("missing required field", _broken(4, nom=None), "Service n° 5", "nom",
     "champ obligatoire manquant"),
    ("unknown thématique", _broken(6, thematiques=["sante--teleportation"]), "Service n° 7",
     "thematiques", "thématique inconnue « sante--teleportation »"),
    ("bad COG code", _broken(2, zone_eligibilite=["75999"]), "Service n° 3",
     "zone_eligibilite", "« 75999 »"),
    ("malformed COG code", _broken(2, zone_eligibilite=["7505"]), "Service n° 3",
     "zone_eligibilite", "code « 7505 » invalide"),
    ("tous-publics mixed", _broken(8, publics=["tous-publics", "femmes"]), "Service n° 9",
     "publics", "« tous-publics » ne peut pas être utilisé avec d’autres valeurs"),
    ("duplicate id", _broken(9, id=SMALL[2]["id"], source=SMALL[2]["source"]),
     "Service n° 10", "id", "déjà présent (service n° 3)"),
    ("bad date", _broken(1, date_maj="2025-02-30"), "Service n° 2", "date_maj",
     "date invalide"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "rows", "where", "field", "message"), CASES, ids=[c[0] for c in CASES]
)
def test_each_kind_of_error_writes_nothing(
    cli, seeded, tmp_path, case, rows, where, field, message
):
    path = _write(tmp_path, "services.json", services_json(rows))
    before = _counts(seeded)
    result = cli("import", "services", path)
    assert result.exit_code == 2, result.output
    out = result.output
    assert "Import refusé : aucune donnée n'a été enregistrée." in out
    line = next(x for x in out.splitlines() if x.startswith(where))
    assert f"champ « {field} »" in line and message in line, line
    assert "1 erreur à corriger" in out
    assert _counts(seeded) == before


def test_csv_errors_name_the_spreadsheet_line(cli, seeded, tmp_path):
    rows = _broken(3, thematiques=["sante--teleportation"])
    path = _write(tmp_path, "services.csv", services_csv(rows))
    result = cli("import", "services", path)
    assert result.exit_code == 2
    assert "Ligne 5 (« " in result.output and "champ « thematiques »" in result.output


def test_wrong_encoding_is_refused_with_its_line(cli, seeded, tmp_path):
    keep = ("source", "structure_id", "id", "nom", "description", "date_maj", "zone_eligibilite")
    rows = [{k: r[k] for k in keep} for r in SMALL[:5]]
    for i, r in enumerate(rows):
        r.update(nom=f"Service {i}", description="Un service sans accent.")
    rows[2]["nom"] = "Épicerie solidaire des Crêtes"  # the only non-ASCII text: line 4
    body = services_csv(rows).decode("utf-8").encode("cp1252")
    path = _write(tmp_path, "services.csv", body)
    before = _counts(seeded)
    result = cli("import", "services", path)
    assert result.exit_code == 2
    assert "Ligne 4 : le fichier n'est pas encodé en UTF-8" in result.output
    assert _counts(seeded) == before


def test_a_bad_file_after_a_good_one_changes_nothing(cli, seeded, tmp_path):
    good = _write(tmp_path, "good.json", services_json(SMALL))
    assert cli("import", "services", good).exit_code == 0
    snapshot, counts = _snapshot(seeded), _counts(seeded)
    bad = _write(tmp_path, "bad.json", services_json(_broken(0, date_maj=None)[1:] + [{"x": 1}]))
    result = cli("import", "services", bad)
    assert result.exit_code == 2
    assert _snapshot(seeded) == snapshot and _counts(seeded) == counts


def test_unreadable_file_and_structures(cli, seeded, tmp_path):
    missing = cli("import", "services", str(tmp_path / "absent.json"))
    assert missing.exit_code == 2 and "impossible de lire" in missing.output
    broken_json = _write(tmp_path, "s.json", b'[{"id": 1,')
    result = cli("import", "services", broken_json)
    assert result.exit_code == 2 and "JSON invalide" in result.output
    structures = _write(tmp_path, "st.json", json.dumps([{"id": "x", "source": "dora"}]).encode())
    good = _write(tmp_path, "good.json", services_json(SMALL))
    result = cli("import", "services", good, "--structures", structures)
    assert result.exit_code == 2
    assert "st.json, Structure n° 1 (« x »), champ « nom » : champ obligatoire manquant" in (
        result.output
    )


# --- withdrawal ---------------------------------------------------------------------------


def _first_referral(db, territory: str, thematique: str | None = None) -> m.Referral:  # type: ignore[no-untyped-def]
    with db.sessions() as s:
        tid = s.scalar(select(m.Territory.id).where(m.Territory.code == territory))
        q = select(m.Referral).where(m.Referral.territory_id == tid, m.Referral.state == "new",
                                     m.Referral.owner_kind == "officer")  # fmt: skip
        if thematique:
            q = q.where(m.Referral.thematique == thematique)
        return s.scalars(q.order_by(m.Referral.id)).first()


def _officer(session, ref: m.Referral) -> m.StaffUser:  # type: ignore[no-untyped-def]
    return session.get(m.StaffUser, ref.owner_user_id)


def test_absent_service_is_withdrawn_never_deleted_and_may_come_back(seeded):
    settings = Settings(database_url=seeded.url)
    run_intake(seeded, settings, clock=CLOCK)
    ref = _first_referral(seeded, "paris")
    rows = [dict(r) for r in SMALL]
    rows[0].update(zone_eligibilite=["75"], thematiques=[ref.thematique]
                   if "--" in ref.thematique else ["sante--acces-aux-soins"])  # fmt: skip
    rows[1].update(zone_eligibilite=["69"])
    assert import_services(seeded, services_json(rows), filename="a.json", clock=CLOCK).ok
    with unit_of_work(seeded) as s:
        gone = s.scalar(select(m.ImportedService).where(m.ImportedService.key == rows[0]["id"]))
        offer_id = gone.offer_id
        actor = Actor.of(_officer(s, ref))
        transition(s, settings, ref.id, "take", actor=actor, clock=CLOCK)
        record_orientation(s, settings, ref.id, offer_id, actor=actor, clock=CLOCK,
                           mode="telephone")  # fmt: skip
    later = Clock.on_day(TODAY + timedelta(days=7), running=False)
    outcome = import_services(seeded, services_json(rows[2:]), filename="b.json", clock=later)
    assert (
        outcome.ok
        and outcome.withdrawn == 2
        and outcome.unchanged == len(rows) - 2 - (outcome.outside)
    )
    with seeded.sessions() as s:
        withdrawn = s.scalar(
            select(m.ImportedService).where(m.ImportedService.key == rows[0]["id"])
        )
        assert withdrawn is not None and withdrawn.withdrawn_at is not None
        assert s.get(m.Offer, offer_id) is not None  # the referral still points to it
        assert s.get(m.Referral, ref.id).offer_id == offer_id
        with seeded.engine.connect() as conn:
            net = load_network(conn, load_rules(), today=TODAY)
            default_day = load_network(conn, load_rules())  # the day of the last import
        assert offer_id not in net.router._offers  # never proposed again
        assert offer_id not in default_day.router._offers
    back = import_services(seeded, services_json(rows), filename="c.json", clock=later)
    assert back.reinstated == 2 and back.withdrawn == 0
    with seeded.sessions() as s:
        assert (
            s.scalar(
                select(m.ImportedService.withdrawn_at).where(m.ImportedService.key == rows[0]["id"])
            )
            is None
        )
    # A producer absent from a file is left as it was (a file may be one producer's extract).
    other = [r for r in rows if r["source"] != rows[0]["source"]]
    kept = import_services(seeded, services_json(other), filename="d.json", clock=later)
    assert kept.withdrawn == 0


# --- routing ------------------------------------------------------------------------------


def _service(n: int, *, thematique: str, dep: str, date_maj: date, score: float | None = None,
             courriel: str | None = None) -> dict:  # type: ignore[type-arg]  # fmt: skip
    row = v1.Service(
        source="dora",
        structure_id=f"dora--structure-test-{n}",
        id=f"dora--test-{n}",
        nom=f"Service de test n° {n}",
        description="Un service de test pour le routage des freins.",
        date_maj=date_maj,
        thematiques={v1.Thematique(thematique)},
        zone_eligibilite=[dep],
        courriel=courriel,
        modes_mobilisation={v1.ModeMobilisation.TELEPHONER},
        telephone="+33100000000",
    ).model_dump(mode="json", exclude_none=True)
    if score is not None:
        row["score_qualite"] = score
    return row


def _pending_frein(db) -> tuple[m.Frein, str, str]:  # type: ignore[no-untyped-def]
    """An open frein with a precise thématique of a territory with a chargé·e of its domain."""
    with db.sessions() as s:
        rows = s.execute(
            select(m.Frein, m.Territory.code, m.Territory.departments)
            .join(m.Salarie, m.Salarie.id == m.Frein.salarie_id)
            .join(m.Chantier, m.Chantier.id == m.Salarie.chantier_id)
            .join(m.Territory, m.Territory.id == m.Chantier.territory_id)
            .where(m.Frein.status == "open", m.Frein.thematique.like("%--%"),
                   m.Frein.domain != "transverse", m.Territory.code == "paris")
            .order_by(m.Frein.id)
        ).first()  # fmt: skip
        assert rows is not None
        return rows[0], rows[1], rows[2].split(",")[0]


def test_routing_proposes_a_fresh_imported_service_before_a_stale_one(seeded):
    frein, territory, dep = _pending_frein(seeded)
    stale = _service(1, thematique=frein.thematique, dep=dep, date_maj=TODAY - timedelta(days=500))
    low = _service(2, thematique=frein.thematique, dep=dep, date_maj=TODAY - timedelta(days=10),
                   score=0.2)  # fmt: skip
    fresh = _service(3, thematique=frein.thematique, dep=dep, date_maj=TODAY - timedelta(days=10),
                     score=0.9)  # fmt: skip
    # Fewer offers than suggestion slots would hide the order: drop the catalogue's offers.
    with unit_of_work(seeded) as s:
        s.execute(update(m.Offer).values(thematiques=["remobilisation--lien-social"]))
    outcome = import_services(
        seeded, services_json([stale, low, fresh]), filename="s.json", clock=CLOCK
    )
    assert outcome.ok and outcome.created == 3 and outcome.to_review == 2
    run_intake(seeded, Settings(database_url=seeded.url), clock=CLOCK)
    with seeded.sessions() as s:
        ids = {r.key: r.offer_id for r in s.scalars(select(m.ImportedService))}
        ref = s.scalar(select(m.Referral).where(m.Referral.frein_id == frein.id))
        ranked = [int(sg[0]) for sg in ref.suggestions]
    # Inserted first (lower ids) and equally specific, the stale and the low-quality services
    # still come after the fresh one.
    assert ranked[0] == ids["dora--test-3"]
    assert set(ranked) == {ids["dora--test-1"], ids["dora--test-2"], ids["dora--test-3"]}


def test_routing_skips_other_territories_and_uses_local_rules(seeded):
    frein, territory, dep = _pending_frein(seeded)
    elsewhere = _service(1, thematique=frein.thematique, dep="13", date_maj=TODAY)
    here = _service(2, thematique=frein.thematique, dep=dep, date_maj=TODAY)
    assert import_services(
        seeded, services_json([elsewhere, here]), filename="s.json", clock=CLOCK
    ).ok
    with unit_of_work(seeded) as s:
        ids = {r.key: r.offer_id for r in s.scalars(select(m.ImportedService))}
        admin = s.scalar(select(m.StaffUser).where(m.StaffUser.role == "national_admin"))
        add_rule(s, admin, ids["dora--test-2"], field_name="household_size", op="lte",
                 value="0", label="Réservé aux foyers vides (règle de test).", clock=CLOCK)  # fmt: skip
        with pytest.raises(Refused):
            add_rule(s, admin, ids["dora--test-2"], field_name="programme", op="eq",
                     value="xyz", label="Programme inconnu.", clock=CLOCK)  # fmt: skip
    run_intake(seeded, Settings(database_url=seeded.url), clock=CLOCK)
    with seeded.sessions() as s:
        ref = s.scalar(select(m.Referral).where(m.Referral.frein_id == frein.id))
        suggested = {int(sg[0]) for sg in ref.suggestions}
    assert ids["dora--test-1"] not in suggested  # Marseille's service is not Paris's
    assert ids["dora--test-2"] not in suggested  # the rule the chargé·e attached rejects
    # A re-import keeps what the network added: the rule stays.
    changed = dict(here, nom="Service de test renommé")
    assert (
        import_services(
            seeded, services_json([elsewhere, changed]), filename="s.json", clock=CLOCK
        ).updated
        == 1
    )
    with seeded.sessions() as s:
        offer = s.get(m.Offer, ids["dora--test-2"])
        assert offer.name == "Service de test renommé" and len(offer.rules) == 1


def test_a_local_counted_pool_tied_to_an_imported_service(seeded):
    here = _service(1, thematique="logement-hebergement--louer-un-logement", dep="75",
                    date_maj=TODAY)  # fmt: skip
    assert import_services(seeded, services_json([here]), filename="s.json", clock=CLOCK).ok
    with unit_of_work(seeded) as s:
        service = s.scalar(select(m.ImportedService))
        officer = s.scalar(
            select(m.StaffUser).where(m.StaffUser.email == f"logement.paris.1@{MAIL_DOMAIN}")
        )
        lyon = s.scalar(
            select(m.StaffUser).where(m.StaffUser.email == f"logement.lyon.1@{MAIL_DOMAIN}")
        )
        pool = tie_pool(s, officer, service.offer_id, territory_code="paris", capacity=4,
                        unit_kind="logement", clock=CLOCK)  # fmt: skip
        with pytest.raises(Refused):
            tie_pool(s, officer, service.offer_id, territory_code="paris", capacity=2,
                     unit_kind="logement", clock=CLOCK)  # fmt: skip
        from engine.domain.errors import NotFound

        with pytest.raises(NotFound):  # Lyon's chargé·e: the service does not cover Lyon
            tie_pool(s, lyon, service.offer_id, territory_code="lyon", capacity=2,
                     unit_kind="logement", clock=CLOCK)  # fmt: skip
        pool_id = pool.id
    with seeded.sessions() as s:
        offer = s.get(m.Offer, service.offer_id)
        assert offer.slot_based and offer.unit_kind == "logement"
        units = s.scalar(select(func.count()).where(m.SlotUnit.pool_id == pool_id))
        assert units == 4
    # Re-importing the service (changed) keeps the pool and the counted offer.
    assert import_services(
        seeded, services_json([dict(here, nom="Logements (mis à jour)")]), filename="s.json",
        clock=CLOCK,
    ).updated == 1  # fmt: skip
    with seeded.sessions() as s:
        assert s.get(m.Offer, service.offer_id).slot_based
        assert s.get(m.SlotPool, pool_id).capacity == 4


# --- the mail only to a public address --------------------------------------------------


def test_mail_only_to_a_public_address_else_the_orientation_is_recorded(seeded):
    settings = Settings(database_url=seeded.url)
    run_intake(seeded, settings, clock=CLOCK)
    public = _service(1, thematique="sante--acces-aux-soins", dep="75", date_maj=TODAY,
                      courriel="accueil-sante@example.org")  # fmt: skip
    private = _service(2, thematique="sante--acces-aux-soins", dep="75", date_maj=TODAY)
    assert import_services(
        seeded, services_json([public, private]), filename="s.json", clock=CLOCK
    ).ok
    with seeded.sessions() as s:
        ids = {r.key: r.offer_id for r in s.scalars(select(m.ImportedService))}
        tid = s.scalar(select(m.Territory.id).where(m.Territory.code == "paris"))
        refs = s.scalars(
            select(m.Referral.id).where(m.Referral.territory_id == tid, m.Referral.state == "new",
                                        m.Referral.owner_kind == "officer").order_by(m.Referral.id)
        ).all()[:3]  # fmt: skip
    with unit_of_work(seeded) as s:
        for rid in refs:
            owner = s.get(m.StaffUser, s.get(m.Referral, rid).owner_user_id)
            transition(s, settings, rid, "take", actor=Actor.of(owner), clock=CLOCK)
        mailed_before = s.scalar(select(func.count()).select_from(m.OutboxMessage).where(
            m.OutboxMessage.kind == "partner_orientation"))  # fmt: skip
        owner = s.get(m.StaffUser, s.get(m.Referral, refs[0]).owner_user_id)
        actor = Actor.of(owner)
        record_orientation(s, settings, refs[0], ids["dora--test-1"], actor=actor, clock=CLOCK)
        with pytest.raises(Refused, match="pas d'adresse électronique publique"):
            record_orientation(s, settings, refs[1], ids["dora--test-2"],
                               actor=Actor.of(s.get(m.StaffUser, s.get(m.Referral, refs[1]).owner_user_id)),
                               clock=CLOCK)  # fmt: skip
    with unit_of_work(seeded) as s:
        owner = s.get(m.StaffUser, s.get(m.Referral, refs[1]).owner_user_id)
        record_orientation(s, settings, refs[1], ids["dora--test-2"], actor=Actor.of(owner),
                           clock=CLOCK, mode="telephone", note="Rendez-vous pris.")  # fmt: skip
    with seeded.sessions() as s:
        mails = s.scalars(select(m.OutboxMessage).where(
            m.OutboxMessage.kind == "partner_orientation")).all()  # fmt: skip
        assert len(mails) == mailed_before + 1
        assert mails[-1].to_address == "accueil-sante@example.org"
        assert mails[-1].referral_id == refs[0]
        assert s.get(m.Referral, refs[1]).state == "referred"
        event = s.scalars(select(m.ReferralEvent).where(
            m.ReferralEvent.referral_id == refs[1], m.ReferralEvent.action == "refer")).one()  # fmt: skip
        assert event.note.startswith("Orientation faite par téléphone (service sans adresse")
        assert "Rendez-vous pris." in event.note


# --- the pages ----------------------------------------------------------------------------


def _login(client: TestClient, email: str) -> None:
    page = client.get("/connexion").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    done = client.post("/connexion", data={"csrf_token": token, "email": email,
                       "password": DEMO_PASSWORD, "suivant": "/file"}, follow_redirects=False)  # fmt: skip
    assert done.status_code == 303


def test_directory_search_source_flags_and_orientation_page(seeded):
    settings = Settings(database_url=seeded.url)
    run_intake(seeded, settings, clock=CLOCK)
    rows = [
        _service(1, thematique="sante--addictions", dep="75", date_maj=TODAY - timedelta(days=500)),
        _service(2, thematique="mobilite--preparer-un-permis", dep="69", date_maj=TODAY),
    ]
    rows[1]["nom"] = "Auto-école sociale des Pentes"
    assert import_services(seeded, services_json(rows), filename="s.json", clock=CLOCK).ok
    web = create_app(settings, seeded, CLOCK)
    client = TestClient(web)
    _login(client, f"admin@{MAIL_DOMAIN}")
    page = client.get("/partenaires").text
    assert "Catalogue Convergence" in page and "2 services" in page
    assert "data·inclusion, producteur « dora »" in page and "À vérifier" in page
    found = client.get(
        "/partenaires", params={"q": "ECOLE SOCIALE", "origine": "data-inclusion"}
    ).text
    assert "Auto-école sociale des Pentes" in found and "Service de test n° 1" not in found
    by_theme = client.get("/partenaires", params={"thematique": "sante"}).text
    assert "Service de test n° 1" in by_theme and "Auto-école" not in by_theme
    by_territory = client.get("/partenaires", params={"territoire": "lyon"}).text
    assert "Auto-école" in by_territory and "Service de test n° 1" not in by_territory
    review = client.get("/partenaires", params={"a_verifier": "1"}).text
    assert "Service de test n° 1" in review and "Auto-école" not in review
    for params in ({"page": "abc"}, {"page": "99999999999"}, {"thematique": "zzz"},
                   {"q": "%_\\"}, {"territoire": "x" * 500}):  # fmt: skip
        assert client.get("/partenaires", params=params).status_code == 200
    with seeded.sessions() as s:
        ids = {r.key: r.offer_id for r in s.scalars(select(m.ImportedService))}
        ref = s.scalars(select(m.Referral).where(m.Referral.state == "new")
                        .order_by(m.Referral.id)).first()  # fmt: skip
    offer_page = client.get(f"/partenaires/offres/{ids['dora--test-1']}").text
    assert "plus de 12 mois" in offer_page and "Ajouter une règle" in offer_page
    orient = client.get(f"/orientations/{ref.id}/orienter/{ids['dora--test-1']}").text
    assert "aucun courriel ne lui sera envoyé" in orient and "+33100000000" in orient
    assert client.get("/partenaires/offres/999999").status_code == 404


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def test_pages_attach_a_rule_tie_a_pool_and_record_an_orientation(seeded):
    settings = Settings(database_url=seeded.url)
    run_intake(seeded, settings, clock=CLOCK)
    row = _service(1, thematique="logement-hebergement--louer-un-logement", dep="75",
                   date_maj=TODAY)  # fmt: skip
    assert import_services(seeded, services_json([row]), filename="s.json", clock=CLOCK).ok
    with seeded.sessions() as s:
        offer_id = s.scalar(select(m.ImportedService.offer_id))
        catalogue_offer = s.scalar(select(m.Offer.id).where(~m.Offer.code.like("di-%")))
        tid = s.scalar(select(m.Territory.id).where(m.Territory.code == "paris"))
        ref = s.scalars(select(m.Referral).where(
            m.Referral.territory_id == tid, m.Referral.state == "new",
            m.Referral.domain == "logement", m.Referral.owner_kind == "officer",
        ).order_by(m.Referral.id)).first()  # fmt: skip
        owner = s.get(m.StaffUser, ref.owner_user_id)
        contact = s.scalar(select(m.StaffUser).where(m.StaffUser.role == "partner_contact"))
    web = create_app(settings, seeded, CLOCK)
    officer = TestClient(web)
    _login(officer, owner.email)
    assert officer.get(f"/partenaires/offres/{catalogue_offer}").status_code == 200
    page = officer.get(f"/partenaires/offres/{offer_id}").text
    assert "Ajouter une règle" in page and "Rattacher un contingent local" in page
    done = officer.post(f"/partenaires/offres/{offer_id}/regles", data={
        "csrf_token": _csrf(page), "field": "household_size", "op": "lte", "value": "4",
        "label": "Foyers de 4 personnes au plus.",
    }, follow_redirects=False)  # fmt: skip
    assert done.status_code == 303
    bad = officer.post(f"/partenaires/offres/{offer_id}/regles", data={
        "csrf_token": _csrf(page), "field": "household_size", "op": "lte", "value": "beaucoup",
        "label": "x",
    })  # fmt: skip
    assert bad.status_code == 422 and "demande un nombre" in bad.text
    pool = officer.post(f"/partenaires/offres/{offer_id}/contingents", data={
        "csrf_token": _csrf(page), "territory": "paris", "capacity": "3", "unit_kind": "logement",
    }, follow_redirects=False)  # fmt: skip
    assert pool.status_code == 303
    shown = officer.get(f"/partenaires/offres/{offer_id}").text
    assert "Foyers de 4 personnes au plus." in shown and "3 logements" in shown
    with seeded.sessions() as s:
        assert s.get(m.Offer, offer_id).rules[0]["value"] == 4
    # An orientation recorded from the page (the service has no public address).
    other = _service(2, thematique="logement-hebergement--louer-un-logement", dep="75",
                     date_maj=TODAY)  # fmt: skip
    assert import_services(seeded, services_json([row, other]), filename="s.json", clock=CLOCK).ok
    with seeded.sessions() as s:
        other_id = s.scalar(select(m.ImportedService.offer_id).where(
            m.ImportedService.key == "dora--test-2"))  # fmt: skip
    case = officer.get(f"/orientations/{ref.id}").text
    taken = officer.post(f"/orientations/{ref.id}/actions", data={
        "csrf_token": _csrf(case), "action": "take", "version": str(ref.version)},
        follow_redirects=False)  # fmt: skip
    assert taken.status_code == 303
    # The case page sends the chargé·e to the page that records an orientation made by
    # phone, link or walk-in, for the services one cannot mail.
    case = officer.get(f"/orientations/{ref.id}").text
    assert f'href="/orientations/{ref.id}/orienter/{other_id}"' in case
    assert "sans adresse électronique publique" in case
    orient = officer.get(f"/orientations/{ref.id}/orienter/{other_id}").text
    assert "Enregistrer l'orientation faite" in orient
    recorded = officer.post(f"/orientations/{ref.id}/orienter/{other_id}", data={
        "csrf_token": _csrf(orient), "mode": "lien", "version": str(ref.version + 1),
    }, follow_redirects=False)  # fmt: skip
    assert recorded.status_code == 303, recorded.text[-500:]
    with seeded.sessions() as s:
        done_ref = s.get(m.Referral, ref.id)
        assert done_ref.state == "referred" and done_ref.offer_id == other_id
    # No link was sent, so no reminder and no "sans réponse" expiry: the chargé·e follows it.
    from datetime import timedelta

    from engine.deadlines import write_due_reminders
    from engine.domain.clock import Clock

    later = Clock.fixed(CLOCK.now() + timedelta(days=settings.partner_expiry_days + 5))
    write_due_reminders(seeded, settings, clock=later)
    with seeded.sessions() as s:
        assert s.get(m.Referral, ref.id).state == "referred"
        assert not s.scalar(select(func.count()).select_from(m.OutboxMessage).where(
            m.OutboxMessage.referral_id == ref.id, m.OutboxMessage.kind == "partner_reminder"))  # fmt: skip
    # Out of scope: a partner contact sees neither the offer's page nor the orientation page.
    if contact is not None:
        partner = TestClient(web)
        _login(partner, contact.email)
        assert partner.get(f"/partenaires/offres/{offer_id}").status_code == 404
        assert partner.get(f"/orientations/{ref.id}/orienter/{other_id}").status_code == 404

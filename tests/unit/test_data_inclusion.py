"""The pure part of the data·inclusion import: parsing, validation, French errors, the COG
table, zone → territories, thématiques → domains, freshness, and the routing rank of
services *à vérifier*."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from data_inclusion.schema import v1
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.facts import PersonFacts
from matching.routing import FreinIn, OfferInfo, Router
from matching.rules import load_rules
from notifications.fields import PLACE_NAME_RE
from partners.data_inclusion import (
    ServiceRecord,
    department_index,
    domains_of,
    format_report,
    mail_safe_name,
    parse_services,
    principal_domain,
    quality_score,
    territories_of,
    upsert_key,
)
from partners.data_inclusion_cog import build_table, default_cog, parse_cog
from partners.data_inclusion_fixtures import (
    generate_services,
    service_rows,
    services_csv,
    services_json,
    structures_json,
)
from partners.data_inclusion_review import is_stale, months_before, review_reasons
from partners.eligibility_rules import Rule

TODAY = date(2026, 11, 26)
TERRITORIES = {"paris": ["75"], "seine-saint-denis": ["93"], "lyon": ["69"], "marseille": ["13"]}
COG = default_cog()


def _row(**changes) -> dict:  # type: ignore[type-arg]
    row = {
        "source": "dora",
        "structure_id": "dora--s1",
        "id": "dora--1",
        "nom": "Permanence d'accès aux droits",
        "description": "Aide aux démarches administratives.",
        "date_maj": "2026-06-01",
        "thematiques": [
            "difficultes-administratives-ou-juridiques--accompagnement-pour-lacces-aux-droits"
        ],
        "zone_eligibilite": ["75"],
    }
    for key, value in changes.items():
        if value is None:
            row.pop(key, None)
        else:
            row[key] = value
    return row


def _parse(rows, filename: str = "s.json", **kw):  # type: ignore[no-untyped-def]
    body = rows if isinstance(rows, bytes) else json.dumps(rows).encode()
    return parse_services(body, filename=filename, territories=TERRITORIES, **kw)


# --- the COG table --------------------------------------------------------------------------


def test_cog_table_knows_communes_departements_and_epci():
    assert COG.millesime.isdigit() and "decoupage-administratif" in COG.source
    assert len(COG.departements) >= 101 and {"2A", "2B", "971", "974", "976"} <= set(
        COG.departements
    )
    assert COG.departements_of("75056") == ("75",)  # Paris
    assert COG.departements_of("75118") == ("75",)  # a municipal arrondissement
    assert COG.departements_of("2A004") == ("2A",)  # Ajaccio
    assert COG.departements_of("97411") == ("974",)  # Saint-Denis de La Réunion
    assert COG.departements_of("69") == ("69",)
    # The Métropole du Grand Paris spans Paris and the three inner départements (and more).
    assert {"75", "92", "93", "94"} <= set(COG.departements_of("200054781"))
    assert COG.kind("france") == COG.kind("99100") == "france"
    assert COG.kind("99134") == "pays" and COG.departements_of("99134") == ()
    for unknown in ("75999", "20", "000000000", "99700"):
        assert COG.kind(unknown) is None


def test_cog_table_is_built_from_the_package_data(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "package.json").write_text(json.dumps({"version": "6.0.0"}))
    (data / "departements.json").write_text(json.dumps([{"code": "75", "nom": "Paris"},
                                                        {"code": "93", "nom": "Seine-Saint-Denis"}]))  # fmt: skip
    (data / "communes.json").write_text(json.dumps([
        {"code": "75056", "departement": "75", "type": "commune-actuelle"},
        {"code": "75101", "departement": "75", "type": "arrondissement-municipal"},
        {"code": "93066", "departement": "93", "type": "commune-actuelle"},
    ]))  # fmt: skip
    (data / "epci.json").write_text(json.dumps([
        {"code": "200054781", "membres": [{"code": "75056"}, {"code": "93066"}]}
    ]))  # fmt: skip
    raw = build_table(tmp_path, built_on=date(2026, 12, 5))
    table = parse_cog(json.loads(json.dumps(raw)))
    assert raw["millesime"] == "2026" and raw["built_on"] == "2026-12-05"
    assert table.departements_of("75101") == ("75",)
    assert table.departements_of("200054781") == ("75", "93")


# --- zone → territories, thématiques → domains -------------------------------------------


def test_zone_maps_to_territories_through_departements():
    index = department_index(TERRITORIES)
    assert territories_of(["france"], COG, index) is None
    assert territories_of(["99100"], COG, index) is None
    assert territories_of(["75"], COG, index) == ("paris",)
    assert territories_of(["69123"], COG, index) == ("lyon",)  # Lyon, the commune
    assert territories_of(["13055", "93"], COG, index) == ("marseille", "seine-saint-denis")
    assert territories_of(["200054781"], COG, index) == ("paris", "seine-saint-denis")
    assert territories_of(["23"], COG, index) == ()  # Creuse: no territory there
    two = department_index({"a": ["75"], "b": ["75", "93"]})
    assert two == {"75": ("a", "b"), "93": ("b",)}


def test_thematiques_map_to_domains():
    slugs = ["sante--addictions", "sante--sante-mentale", "logement-hebergement--louer-un-logement",
             "creer-une-entreprise--developper-son-entreprise"]  # fmt: skip
    assert domains_of(slugs) == ("sante", "logement")
    assert principal_domain(slugs) == "sante"
    assert (
        principal_domain(
            ["trouver-un-emploi--maintien-dans-lemploi", "numerique--acquerir-un-equipement"]
        )
        == "emploi"
    )
    assert principal_domain(["creer-une-entreprise--developper-son-entreprise"]) is None


def test_every_v1_thematique_outside_two_categories_is_routable():
    from partners.taxonomy import THEMATIQUES

    outside = {t.value for t in v1.Thematique if t.value not in THEMATIQUES}
    assert {s.split("--")[0] for s in outside} == {
        "creer-une-entreprise",
        "souvrir-a-linternational",
    }


# --- freshness ------------------------------------------------------------------------------


@given(st.dates(min_value=date(2001, 1, 1), max_value=date(2099, 12, 31)))
def test_twelve_months_before_is_the_same_day_a_year_earlier(today):
    before = months_before(today, 12)
    assert before.year == today.year - 1 and before.month == today.month
    assert before.day == today.day or (today.month, today.day) == (2, 29)
    assert not is_stale(before, today) and is_stale(before - timedelta(days=1), today)


def test_review_reasons_in_french():
    assert review_reasons(date(2026, 1, 1), 0.9, TODAY) == ()
    old = review_reasons(date(2025, 11, 25), None, TODAY)
    assert old == ("plus de 12 mois sans mise à jour (dernière le 25/11/2025)",)
    assert review_reasons(date(2026, 1, 1), 0.25, TODAY) == (
        "score de qualité faible (0,25 sur 1)",
    )


# --- parsing and validation -----------------------------------------------------------------


def test_a_valid_row_becomes_a_record():
    result = _parse([_row(score_qualite=0.8, courriel="accueil@example.org",
                          publics=["femmes", "jeunes"], conditions_acces="Sur rendez-vous.")])  # fmt: skip
    assert result.ok and result.rows_read == 1
    r = result.records[0]
    assert r.key == "dora--1" and r.territories == ("paris",) and r.domain == "transverse"
    assert r.score_qualite == 0.8 and not r.score_computed and r.courriel == "accueil@example.org"
    assert r.conditions_acces == "Sur rendez-vous." and r.publics == ("femmes", "jeunes")
    assert r.in_network and r.digest() == _parse([_row(score_qualite=0.8, courriel="accueil@example.org",
            publics=["jeunes", "femmes"], conditions_acces="Sur rendez-vous.")]).records[0].digest()  # fmt: skip


def test_upsert_key_is_source_then_id():
    assert upsert_key("dora", "dora--17") == "dora--17"
    assert upsert_key("dora", "17") == "dora--17"
    result = _parse([_row(id="17"), _row(id="dora--17")])
    assert not result.ok and "identifiant « dora--17 » déjà présent (service n° 1)" in str(
        result.errors[0]
    )


def test_without_zone_the_service_commune_is_used():
    r = _parse([_row(zone_eligibilite=None, code_insee="93066")]).records[0]
    assert r.territories == ("seine-saint-denis",)
    nowhere = _parse([_row(zone_eligibilite=None)]).records[0]
    assert nowhere.territories == () and not nowhere.in_network


def test_missing_score_is_computed_with_the_schema_criteria():
    bare = _parse([_row()]).records[0]
    full = _parse([_row(
        publics=["tous-publics"], frais="gratuit", telephone="+33100000000",
        modes_mobilisation=["telephoner"], mobilisable_par=["professionnels"],
        description="x" * 300,
    )]).records[0]  # fmt: skip
    assert bare.score_computed and 0 <= bare.score_qualite < full.score_qualite <= 1
    service = v1.Service.model_validate(_row())
    assert quality_score(service) == bare.score_qualite


ERRORS = [
    (_row(nom=None), "nom", "champ obligatoire manquant"),
    (_row(date_maj=None), "date_maj", "champ obligatoire manquant"),
    (_row(thematiques=["sante--teleportation"]), "thematiques",
     "thématique inconnue « sante--teleportation » (référentiel data·inclusion v1)"),
    (_row(zone_eligibilite=["75999"]), "zone_eligibilite",
     "code inconnu du Code officiel géographique « 75999 »"),
    (_row(zone_eligibilite=["7505"]), "zone_eligibilite", "code « 7505 » invalide"),
    (_row(zone_eligibilite=[]), "zone_eligibilite", "liste vide"),
    (_row(publics=["tous-publics", "femmes"]), "publics",
     "« tous-publics » ne peut pas être utilisé avec d’autres valeurs"),
    (_row(publics=["martiens"]), "publics", "public inconnu·e « martiens »"),
    (_row(modes_mobilisation=["pigeon"]), "modes_mobilisation", "« pigeon »"),
    (_row(courriel="pas-une-adresse"), "courriel", "adresse électronique invalide"),
    (_row(date_maj="2026-13-01"), "date_maj", "date invalide « 2026-13-01 »"),
    (_row(lien_mobilisation="pas un lien"), "lien_mobilisation", "adresse web invalide"),
    (_row(nom="ab"), "nom", "texte trop court (au moins 3 caractères)"),
    (_row(score_qualite=3), "score_qualite", "nombre entre 0 et 1 attendu"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("row", "field", "message"), ERRORS, ids=[e[1] + "-" + e[2][:20] for e in ERRORS]
)
def test_errors_name_the_row_and_the_field_in_french(row, field, message):
    result = _parse([_row(id="dora--0"), row])
    assert not result.ok and len(result.errors) == 1 and result.records[0].id == "dora--0"
    text = str(result.errors[0])
    assert text.startswith("Service n° 2") and f"champ « {field} »" in text and message in text
    report = format_report(result, filename="s.json")
    assert report.startswith(
        "Import des services data·inclusion (s.json) : 2 services lus, 1 valide, 1 erreur"
    )


def test_several_errors_of_one_row_are_each_reported():
    result = _parse([_row(nom=None, thematiques=["x"], zone_eligibilite=["7"])])
    fields = sorted(e.field or "" for e in result.errors)
    assert fields == ["nom", "thematiques", "zone_eligibilite"]


def test_file_level_errors():
    assert "le fichier est vide" in str(_parse(b"  ").errors[0])
    assert "JSON invalide" in str(_parse(b"[{").errors[0])
    assert "une liste d'objets JSON est attendue" in str(_parse(b'"x"').errors[0])
    assert "objet JSON attendu" in str(_parse(b"[1]").errors[0])
    assert "ne contient aucun service" in str(_parse(b"[]").errors[0])
    bad = (
        json.dumps([_row(nom="Épicerie")], ensure_ascii=False)
        .encode("utf-8")
        .replace("É".encode(), "É".encode("latin-1"))
    )
    err = _parse(bad).errors[0]
    assert str(err).startswith("Ligne 1 : le fichier n'est pas encodé en UTF-8")
    paged = _parse(json.dumps({"items": [_row()]}).encode())
    assert paged.ok and len(paged.records) == 1
    assert _parse(b"\xef\xbb\xbf" + json.dumps([_row()]).encode()).ok  # a BOM is fine


def test_csv_list_cells_in_every_usual_shape():
    header = (
        "source,structure_id,id,nom,description,date_maj,thematiques,zone_eligibilite,publics\n"
    )
    lines = [
        'dora,s,dora--1,Aide un,Une aide.,2026-01-02,"[""sante--addictions""]","[""75""]",femmes',
        'dora,s,dora--2,Aide deux,Une aide.,2026-01-02,"{sante--addictions,sante--sante-mentale}","{75,93}","femmes|jeunes"',
        "dora,s,dora--3,Aide trois,Une aide.,2026-01-02,sante--addictions;sante--sante-mentale,69123,",
    ]
    result = _parse((header + "\n".join(lines) + "\n").encode(), filename="s.csv")
    assert result.ok, [str(e) for e in result.errors]
    r1, r2, r3 = result.records
    assert r1.thematiques == ("sante--addictions",) and r1.publics == ("femmes",)
    assert r2.territories == ("paris", "seine-saint-denis") and r2.publics == ("femmes", "jeunes")
    assert r3.thematiques == ("sante--addictions", "sante--sante-mentale") and r3.territories == (
        "lyon",
    )
    semi = (
        header.replace(",", ";")
        + "dora;s;dora--4;Aide;Une aide.;2026-01-02;sante--addictions;75;\n"
    )
    assert _parse(semi.encode(), filename="x.csv").ok
    shifted = (
        header + "dora,s,dora--5,Aide,Une aide.,2026-01-02,sante--addictions,75,femmes,en trop\n"
    )
    assert "la ligne compte 10 valeurs pour 9 colonnes" in str(
        _parse(shifted.encode(), filename="s.csv").errors[0]
    )


def test_structures_name_the_partner():
    services = generate_services(5, seed=1, today=TODAY, territories=TERRITORIES)
    result = _parse(json.loads(services_json(services)),
                    structures=structures_json(services, today=TODAY))  # fmt: skip
    assert result.ok and result.structures_read == len({s.structure_id for s in services})
    assert all(
        r.structure_name and r.structure_name.startswith("Structure") for r in result.records
    )


def test_generated_exports_are_deterministic_and_valid_in_both_formats():
    a = generate_services(300, seed=5, today=TODAY, territories=TERRITORIES)
    b = generate_services(300, seed=5, today=TODAY, territories=TERRITORIES)
    assert services_json(a) == services_json(b) and services_csv(a) == services_csv(b)
    from_json = _parse(services_json(a))
    from_csv = _parse(services_csv(a), filename="s.csv")
    assert from_json.ok and from_csv.ok
    assert [r.digest() for r in from_json.records] == [r.digest() for r in from_csv.records]
    stale = [r for r in from_json.records if is_stale(r.date_maj, TODAY)]
    assert 10 < len(stale) < 60  # ~10 % stale by construction
    national = [r for r in from_json.records if r.national]
    assert national and all(r.in_network for r in national)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_partner_names_always_fit_the_mail_guard(name):
    safe = mail_safe_name(name)
    assert 0 < len(safe) <= 80 and PLACE_NAME_RE.match(safe) and safe.strip() == safe


def test_details_keep_what_is_shown_not_what_is_routed():
    r: ServiceRecord = _parse([_row(conditions_acces="Sur orientation.")]).records[0]
    details = r.details()
    assert details["conditions_acces"] == "Sur orientation." and details["zone"] == ["75"]
    assert "territories" not in details and "key" not in details and details["id"] == "dora--1"


def test_service_rows_round_trip_the_schema_models():
    services = generate_services(20, seed=2, today=TODAY, territories=TERRITORIES)
    for model, row in zip(services, service_rows(services), strict=True):
        assert v1.Service.model_validate(row) == model


# --- ranking of services "à vérifier" -------------------------------------------------------


def _facts(territory: str = "paris") -> PersonFacts:
    return PersonFacts(person_id=1, programme="cvg", territory=territory, housing="housed",
                       street_months=0, has_resources=True, household_size=2, minor_children=0,
                       rqth=False, vulnerability_flags=frozenset(), health_urgency=False,
                       open_freins=1, programme_end=None)  # fmt: skip


def _offer(offer_id: int, *, review: bool = False, rules: tuple[Rule, ...] = (),
           thematique: str = "sante--addictions", coverage=frozenset({"paris"})) -> OfferInfo:  # type: ignore[no-untyped-def]  # fmt: skip
    return OfferInfo(offer_id, offer_id, f"Partenaire {offer_id}", f"Offre {offer_id}",
                     (thematique,), coverage, False, rules, review=review)  # fmt: skip


@given(st.lists(st.tuples(st.booleans(), st.sampled_from(["sante--addictions", "sante"]),
                          st.booleans()), min_size=1, max_size=8))  # fmt: skip
@settings(max_examples=60, deadline=None)
def test_offers_to_review_rank_after_fresh_ones_and_rules_still_reject(spec):
    never = Rule(field="household_size", op="eq", value=99, label="Jamais.")
    offers = [
        _offer(i, review=review, thematique=th, rules=(never,) if ruled else ())
        for i, (review, th, ruled) in enumerate(spec, start=1)
    ]
    rules = load_rules()
    router = Router([], [], offers, rules)
    decision = router.route_batch([FreinIn(1, "sante--addictions", _facts(), TODAY)], TODAY)[0]
    ranked = [s.offer_id for s in decision.suggestions]
    eligible = [o for o in offers if not o.rules]
    expected = sorted(
        eligible,
        key=lambda o: (o.review, -(200 if o.thematiques[0] == "sante--addictions" else 100),
                       o.offer_id),
    )[: rules.routing.suggestions]  # fmt: skip
    assert ranked == [o.offer_id for o in expected]
    assert {r.offer_id for r in decision.rejected} == {o.offer_id for o in offers if o.rules}

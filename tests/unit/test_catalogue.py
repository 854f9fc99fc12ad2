"""The partner catalogue: the shipped data and the validation of a bad catalogue."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from partners.catalogue import Catalogue, CatalogueError, load_catalogue, parse_catalogue
from partners.taxonomy import OFFICER_DOMAINS, domain_of

TERRITORIES = {
    "paris",
    "seine-saint-denis",
    "lyon",
    "marseille",
    "nantes",
    "rouen",
    "ille-et-vilaine",
    "moselle",
    "somme",
    "mel",
    "charente",
    "strasbourg",
    "isere",
    "pas-de-calais",
}
REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "convergence-2024.json"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue(territories=TERRITORIES)


def _valid() -> dict[str, Any]:
    return {
        "version": 1,
        "partners": [
            {
                "code": "cdc-habitat",
                "name": "CDC Habitat",
                "domain": "logement",
                "national": True,
                "coverage": ["paris", "seine-saint-denis"],
                "contact_email": "cdc@example.org",
                "offers": [
                    {
                        "code": "logement-social",
                        "name": "Logement social",
                        "thematiques": ["logement-hebergement--louer-un-logement"],
                        "slot_based": True,
                        "accepts_direct": False,
                        "unit_kind": "logement",
                        "rules": [
                            {"field": "household_size", "op": "lte", "value": 5, "label": "x"},
                            {"field": "has_resources", "op": "is_true", "label": "y"},
                        ],
                        "pools": [{"territories": ["paris", "seine-saint-denis"], "capacity": 3}],
                    },
                    {
                        "code": "conseil",
                        "name": "Conseil",
                        "thematiques": ["logement-hebergement"],
                        "slot_based": False,
                        "accepts_direct": True,
                    },
                ],
            }
        ],
    }


def _errors(raw: Any, territories: set[str] | None = TERRITORIES) -> list[str]:
    with pytest.raises(CatalogueError) as info:
        parse_catalogue(raw, territories=territories)
    return info.value.messages


# ---------------------------------------------------------------------- shipped catalogue


def test_shipped_catalogue_loads_and_matches_the_reference_territories(
    catalogue: Catalogue,
) -> None:
    assert len(catalogue.partners) > 11
    if REFERENCE.exists():
        reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
        assert {t["code"] for t in reference["territories"]} == TERRITORIES


@pytest.mark.parametrize("territory", sorted(TERRITORIES))
@pytest.mark.parametrize("domain", OFFICER_DOMAINS)
def test_every_territory_has_partners_for_each_domain(
    catalogue: Catalogue, territory: str, domain: str
) -> None:
    covering = catalogue.offers_covering(territory)
    assert any(c.partner.domain == domain for c in covering)
    assert any(domain_of(s) == domain for c in covering for s in c.offer.thematiques)


def test_hors_territoire_sees_only_national_coverage(catalogue: Catalogue) -> None:
    covering = catalogue.offers_covering(None)
    assert covering
    assert all(c.partner.coverage == "national" for c in covering)
    assert "cnam-cpam" in {c.partner.code for c in covering}
    assert "cdc-habitat" not in {c.partner.code for c in covering}


def test_known_capacities_from_the_2024_report(catalogue: Catalogue) -> None:
    pools = {p.key: p for p in catalogue.pools()}
    assert len(pools) == len(catalogue.pools())  # keys are unique
    cdc = pools["cdc-habitat/logement-social/paris+seine-saint-denis"]
    assert (cdc.capacity, cdc.unit_kind, cdc.per, cdc.assumed) == (3, "logement", "year", False)
    cnam = pools["cnam-cpam/bilan-de-sante/national"]
    assert (cnam.capacity, cnam.territories, cnam.unit_kind) == (54, None, "bilan")
    bdc = [p for p in pools.values() if p.partner_code == "bureaux-du-coeur"]
    assert [p.capacity for p in bdc] == [11]
    assert set(bdc[0].territories or ()) == set(catalogue.partner("bureaux-du-coeur").coverage)
    siao = [p for p in pools.values() if p.partner_code == "siao-charente"]
    assert sum(p.capacity for p in siao) == 13
    assert {p.offer_code for p in siao} == {"iml", "alt"}
    assert all(p.assumed and p.territories == ("charente",) for p in siao)
    assert catalogue.pool_for("franprix", "cdi-progressif", "seine-saint-denis") is not None
    assert catalogue.pool_for("maison-et-services", "cdi-progressif", "ille-et-vilaine")
    assert catalogue.pool_for("cdc-habitat", "logement-social", "lyon") is None
    assert catalogue.pool_for("cnam-cpam", "bilan-de-sante", None) == cnam


def test_reference_national_partners_are_all_present(catalogue: Catalogue) -> None:
    if not REFERENCE.exists():
        pytest.skip("shared/reference not beside the repository")
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    names = {p.name for p in catalogue.partners}
    for partner in reference["national_partners"]:
        short = partner["name"].split(" (")[0].split(" / ")[0]
        assert any(short in n for n in names), partner["name"]


def test_eligibility_rules_of_scarce_offers(catalogue: Catalogue) -> None:
    def rules(partner: str, offer: str) -> set[tuple[str, str, Any]]:
        o = catalogue.partner(partner).offer(offer)
        return {(r.field, r.op, json.dumps(r.value)) for r in o.rules}

    assert ("household_size", "lte", "5") in rules("cdc-habitat", "logement-social")
    assert ("has_resources", "is_true", "null") in rules("cdc-habitat", "logement-social")
    assert ("household_size", "eq", "1") in rules("bureaux-du-coeur", "mise-a-l-abri")
    assert ("territory", "in", '["charente"]') in rules("siao-charente", "iml")
    assert ("programme", "eq", '"cvg"') in rules("franprix", "cdi-progressif")
    iml = catalogue.partner("siao-charente").offer("iml")
    alt = catalogue.partner("siao-charente").offer("alt")
    assert iml.excludes == ["alt"] and alt.excludes == ["iml"]


def test_contact_emails_are_fake(catalogue: Catalogue) -> None:
    assert all(p.contact_email.endswith("@example.org") for p in catalogue.partners)


def test_offers_for_a_thematique(catalogue: Catalogue) -> None:
    codes = {
        c.partner.code
        for c in catalogue.offers_for("logement-hebergement--louer-un-logement", "paris")
    }
    assert {"cdc-habitat", "siao-paris"} <= codes  # siao-paris publishes the whole category
    assert "bureaux-du-coeur" not in codes
    lyon = {c.partner.code for c in catalogue.offers_for("sante--addictions", None)}
    assert lyon == {"addictions-france"}


def test_load_from_a_path(tmp_path: Path) -> None:
    f = tmp_path / "annuaire.json"
    f.write_text(json.dumps(_valid()), encoding="utf-8")
    cat = load_catalogue(f, territories=TERRITORIES)
    assert [p.code for p in cat.partners] == ["cdc-habitat"]


# ---------------------------------------------------------------------- bad catalogues


def test_unknown_rule_field_names_partner_offer_and_rule() -> None:
    raw = _valid()
    raw["partners"][0]["offers"][0]["rules"][1]["field"] = "revenu"
    (msg,) = _errors(raw)
    assert msg.startswith(
        "catalogue.json : partenaire « cdc-habitat », offre « logement-social », règle 2, "
        "champ « field » : champ de règle inconnu « revenu »"
    )


def test_rule_without_value() -> None:
    raw = _valid()
    del raw["partners"][0]["offers"][0]["rules"][0]["value"]
    (msg,) = _errors(raw)
    assert "règle 1" in msg and "demande une valeur" in msg


def test_unknown_thematique() -> None:
    raw = _valid()
    raw["partners"][0]["offers"][1]["thematiques"] = ["logement", "sante"]
    (msg,) = _errors(raw)
    assert "partenaire « cdc-habitat », offre « conseil », champ « thematiques »" in msg
    assert "thématique inconnue « logement »" in msg


def test_unknown_territory_in_coverage_pool_and_rule() -> None:
    raw = _valid()
    partner = raw["partners"][0]
    partner["coverage"].append("atlantide")
    partner["offers"][0]["pools"][0]["territories"].append("atlantide")
    partner["offers"][0]["rules"].append(
        {"field": "territory", "op": "in", "value": ["atlantis"], "label": "z"}
    )
    msgs = _errors(raw)
    assert any("champ « coverage » : territoire inconnu « atlantide »" in m for m in msgs)
    assert any(
        "contingent 1, champ « territories » : territoire inconnu « atlantide »" in m for m in msgs
    )
    assert any("règle 3 : territoire inconnu « atlantis »" in m for m in msgs)
    # without the list of territories, codes are not checked
    assert parse_catalogue(raw).partners[0].coverage[-1] == "atlantide"


def test_negative_capacity() -> None:
    raw = _valid()
    raw["partners"][0]["offers"][0]["pools"][0]["capacity"] = -2
    (msg,) = _errors(raw)
    assert "offre « logement-social », contingent 1, champ « capacity »" in msg
    assert "la capacité doit être positive ou nulle (reçu -2)" in msg


def test_duplicate_codes() -> None:
    raw = _valid()
    raw["partners"][0]["offers"][1]["code"] = "logement-social"
    raw["partners"].append(copy.deepcopy(raw["partners"][0]))
    msgs = _errors(raw)
    assert "catalogue.json : partenaire « cdc-habitat » : code de partenaire en double" in msgs
    assert any("offre « logement-social » : code d'offre en double" in m for m in msgs)


def test_unknown_and_missing_fields() -> None:
    raw = _valid()
    raw["partners"][0]["offers"][1]["capacite"] = 3
    del raw["partners"][0]["name"]
    msgs = _errors(raw)
    assert (
        "catalogue.json : partenaire « cdc-habitat », champ « name » : champ obligatoire manquant"
        in msgs
    )
    assert any("offre « conseil », champ « capacite » : champ inconnu" in m for m in msgs)


def test_bad_types_and_literals_are_reported_in_french() -> None:
    raw = _valid()
    raw["partners"][0]["offers"][0]["pools"][0]["capacity"] = "trois"
    raw["partners"][0]["offers"][0]["pools"][0]["per"] = "month"
    raw["partners"][0]["domain"] = "culture"
    msgs = _errors(raw)
    assert any("champ « capacity » : nombre entier attendu" in m for m in msgs)
    assert any("champ « per » : valeur non autorisée « month »" in m for m in msgs)
    assert any("champ « domain » : domaine inconnu « culture »" in m for m in msgs)


def test_pool_consistency() -> None:
    raw = _valid()
    offers = raw["partners"][0]["offers"]
    offers[1]["pools"] = [{"territories": ["paris"], "capacity": 1, "unit_kind": "place"}]
    offers[0]["pools"].append({"territories": ["paris"], "capacity": 1})
    msgs = _errors(raw)
    assert any("offre « conseil »" in m and "n'a pas de contingent" in m for m in msgs)
    assert any("territoire(s) paris déjà couvert(s)" in m for m in msgs)


def test_pool_outside_coverage_and_national_pool_of_local_partner() -> None:
    raw = _valid()
    raw["partners"][0]["offers"][0]["pools"] = [
        {"territories": ["lyon"], "capacity": 1},
    ]
    (msg,) = _errors(raw)
    assert "« lyon » hors de la couverture du partenaire" in msg
    raw["partners"][0]["offers"][0]["pools"] = [{"territories": "national", "capacity": 1}]
    (msg,) = _errors(raw)
    assert "contingent national pour un partenaire à couverture locale" in msg


def test_slot_based_offer_needs_a_unit_and_known_units() -> None:
    raw = _valid()
    del raw["partners"][0]["offers"][0]["unit_kind"]
    raw["partners"][0]["offers"][0]["pools"] = []
    (msg,) = _errors(raw)
    assert "doit préciser son unité" in msg
    raw = _valid()
    raw["partners"][0]["offers"][0]["unit_kind"] = "lit"
    assert any("unité inconnue « lit »" in m for m in _errors(raw))


def test_bad_email_excludes_and_programme() -> None:
    raw = _valid()
    raw["partners"][0]["contact_email"] = "contact@cdc-habitat.fr"
    msgs = _errors(raw)
    assert any("champ « contact_email »" in m and "example.org" in m for m in msgs)
    raw = _valid()
    raw["partners"][0]["offers"][0]["excludes"] = ["alt"]
    raw["partners"][0]["offers"][0]["rules"].append(
        {"field": "programme", "op": "eq", "value": "aci", "label": "z"}
    )
    msgs = _errors(raw)
    assert any("champ « excludes » : offre « alt » inconnue" in m for m in msgs)
    assert any("règle 3 : programme inconnu « aci »" in m for m in msgs)


def test_bad_codes_are_refused() -> None:
    raw = _valid()
    raw["partners"][0]["code"] = "CDC Habitat"
    (msg,) = _errors(raw)
    assert "code « CDC Habitat » invalide" in msg


def test_invalid_json_file(tmp_path: Path) -> None:
    f = tmp_path / "catalogue.json"
    f.write_text('{"partners": [\n  {,}\n]}', encoding="utf-8")
    with pytest.raises(CatalogueError) as info:
        load_catalogue(f)
    assert info.value.messages[0].startswith("catalogue.json : JSON invalide ligne 2")


def test_pool_keys_do_not_depend_on_territory_order() -> None:
    raw = _valid()
    raw["partners"][0]["offers"][0]["pools"][0]["territories"].reverse()
    (pool,) = parse_catalogue(raw).pools()
    assert pool.key == "cdc-habitat/logement-social/paris+seine-saint-denis"


def test_union_field_errors_are_merged_into_one_line() -> None:
    raw = _valid()
    raw["partners"][0]["coverage"] = "nationale"
    (msg,) = _errors(raw)
    assert msg.startswith("catalogue.json : partenaire « cdc-habitat », champ « coverage » : ")
    assert "« nationale »" in msg

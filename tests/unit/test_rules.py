"""The rules file: packaged defaults load, and every mistake gets a French message naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from matching.grid import default_weights
from matching.rules import RulesError, load_rules, parse_rules


def test_packaged_rules_load_with_published_defaults() -> None:
    rules = load_rules()
    assert rules.grid == default_weights()
    assert rules.grid.street == 30 and rules.grid.waiting_max == 26
    assert rules.caps.officer == 120
    assert rules.cap_for("sante") == 120
    assert rules.routing.suggestions == 3
    assert rules.routing.at_cap == "moins_charge"


def test_empty_file_means_all_defaults() -> None:
    assert parse_rules("") == load_rules()


def test_values_are_read_from_file(tmp_path: Path) -> None:
    path = tmp_path / "regles.toml"
    path.write_text(
        """
[grille]
a_la_rue = 40
[plafonds]
charge_partenariats = 90
[plafonds.par_domaine]
logement = 60
[routage]
suggestions = 5
au_plafond = "coordination"
[routage.domaines]
"famille--garde-denfants" = "logement"
[routage.directs]
numerique = "Emmaüs Connect"
""",
        encoding="utf-8",
    )
    rules = load_rules(path)
    assert rules.grid.street == 40
    assert rules.cap_for("logement") == 60 and rules.cap_for("emploi") == 90
    assert rules.routing.suggestions == 5 and rules.routing.at_cap == "coordination"
    assert rules.domain_override("famille--garde-denfants") == "logement"
    assert rules.domain_override("famille--soutien-aidants") is None
    assert rules.direct_partner("numerique") == "Emmaüs Connect"


def test_prefix_override_applies_to_sub_thematiques() -> None:
    rules = parse_rules('[routage.domaines]\nfamille = "logement"\n')
    assert rules.domain_override("famille--garde-denfants") == "logement"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[grille]\na_la_rue = -3\n", "rules.toml : grille.a_la_rue doit être un entier positif"),
        (
            '[grille]\na_la_rue = "trente"\n',
            "rules.toml : grille.a_la_rue doit être un entier positif",
        ),
        ("[grille]\na_la_rue = 2.5\n", "rules.toml : grille.a_la_rue doit être un entier positif"),
        (
            "[grille]\nfin_de_parcours_mois = 0\n",
            "grille.fin_de_parcours_mois doit être un entier strictement positif",
        ),
        ("[grille]\nrue = 3\n", "grille.rue : clé inconnue (clés possibles : a_la_rue,"),
        ("[grile]\n", "grile : clé inconnue"),
        ("grille = 3\n", "grille doit être une table TOML"),
        (
            "[plafonds]\ncharge_partenariats = 0\n",
            "plafonds.charge_partenariats doit être un entier strictement positif",
        ),
        ("[plafonds.par_domaine]\nfoot = 3\n", "plafonds.par_domaine : domaine inconnu « foot »"),
        (
            "[routage]\nsuggestions = 0\n",
            "routage.suggestions doit être un entier strictement positif",
        ),
        (
            '[routage]\nau_plafond = "jamais"\n',
            "routage.au_plafond doit valoir « moins_charge » ou « coordination »",
        ),
        (
            '[routage.domaines]\n"sante--inconnu" = "sante"\n',
            "routage.domaines : thématique inconnue « sante--inconnu »",
        ),
        (
            '[routage.domaines]\nsante = "cuisine"\n',
            "routage.domaines : « sante » : domaine inconnu « cuisine »",
        ),
        (
            '[routage.directs]\nnumerique = " "\n',
            "routage.directs : « numerique » : le nom du partenaire est vide",
        ),
        ("[grille\n", "rules.toml : syntaxe TOML invalide à la ligne 1"),
    ],
)
def test_errors_are_french_and_name_the_key(text: str, expected: str) -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules(text)
    assert expected in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(RulesError) as caught:
        parse_rules("[grille]\na_la_rue = -1\nsans_ressources = -2\n")
    assert len(caught.value.problems) == 2
    assert "grille.sans_ressources" in str(caught.value)


def test_error_names_the_file_read(tmp_path: Path) -> None:
    path = tmp_path / "national.toml"
    path.write_text("[grille]\na_la_rue = -1\n", encoding="utf-8")
    with pytest.raises(RulesError, match=r"^national\.toml : grille\.a_la_rue"):
        load_rules(path)


def test_missing_file_is_reported_in_french(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="fichier introuvable"):
        load_rules(tmp_path / "absent.toml")

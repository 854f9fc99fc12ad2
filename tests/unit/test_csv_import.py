"""CSV import of salarié·es: valid files, each kind of bad file, idempotency support."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Mapping
from datetime import date
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.intake.csv_rows import (
    REQUIRED_COLUMNS,
    ImportResult,
    format_report,
    parse_salaries_csv,
)
from partners.taxonomy import THEMATIQUES

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "salaries-exemple.csv"
CHANTIERS = {"paris-aci-01", "lyon-aci-01", "phc-hors-01"}
HEADER = [
    "reference",
    "chantier",
    "programme",
    "date_entree",
    "date_sortie",
    "situation_logement",
    "mois_rue",
    "ressources",
    "taille_foyer",
    "enfants_mineurs",
    "freins",
]
GOOD = {
    "reference": "CVG-001",
    "chantier": "paris-aci-01",
    "programme": "CVG",
    "date_entree": "15/01/2024",
    "date_sortie": "",
    "situation_logement": "heberge_tiers",
    "mois_rue": "0",
    "ressources": "oui",
    "taille_foyer": "2",
    "enfants_mineurs": "1",
    "freins": "sante--acces-aux-soins|mobilite",
}


def _csv(*rows: dict[str, str], header: list[str] = HEADER, sep: str = ";") -> bytes:
    lines = [sep.join(header)]
    lines += [sep.join(row.get(col, "") for col in header) for row in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _row(**changes: str) -> dict[str, str]:
    return {**GOOD, **changes}


def _parse(
    data: bytes,
    chantiers: Collection[str] | Mapping[str, Collection[str]] = CHANTIERS,
    existing_references: set[str] | None = None,
) -> ImportResult:
    return parse_salaries_csv(
        data, known_chantiers=chantiers, existing_references=existing_references
    )


def _messages(result: ImportResult) -> list[str]:
    return [str(e) for e in result.errors]


# ------------------------------------------------------------------------- valid files


def test_example_file_is_valid_and_uses_the_seed_chantier_patterns() -> None:
    data = EXAMPLE.read_bytes()
    codes = set(re.findall(r";([a-z-]+-aci-\d\d|phc-hors-\d\d);", data.decode("utf-8")))
    result = parse_salaries_csv(data, known_chantiers=codes)
    assert result.ok, format_report(result)
    assert len(result.rows) == 10
    assert {r.chantier for r in result.rows} == codes
    assert {r.programme for r in result.rows} == {"cvg", "phc"}
    assert all(set(r.freins) <= set(THEMATIQUES) for r in result.rows)
    assert not result.warnings


def test_a_row_is_typed() -> None:
    values = _row(
        date_sortie="2025-02-28",
        freins="sante--addictions|mobilite|sante--addictions",
        rqth="oui",
        vulnerabilites="Violences|grossesse",
        nom="Durand",
        courriel="a.d@example.org",
        date_naissance="01/02/1980",
    )
    header = [*HEADER, "rqth", "vulnerabilites", "nom", "courriel", "date_naissance"]
    data = _csv(values, header=header)
    result = _parse(data)
    assert result.ok, _messages(result)
    (row,) = result.rows
    assert row.line == 2
    assert row.reference == "CVG-001"
    assert row.programme == "cvg"
    assert row.entry_date == date(2024, 1, 15)
    assert row.exit_date == date(2025, 2, 28)
    assert row.housing == "hosted_third_party"
    assert (row.household_size, row.minor_children, row.street_months) == (2, 1, 0)
    assert row.has_resources is True and row.rqth is True
    assert row.vulnerability_flags == frozenset({"violence", "pregnancy"})
    assert row.freins == ("sante--addictions", "mobilite")
    assert row.identity is not None
    assert row.identity.last_name == "Durand"
    assert row.identity.birth_date == date(1980, 2, 1)


def test_optional_columns_take_defaults() -> None:
    header = list(REQUIRED_COLUMNS)
    result = _parse(_csv(_row(freins=""), header=header))
    assert result.ok, _messages(result)
    (row,) = result.rows
    assert (row.street_months, row.minor_children, row.rqth, row.exit_date) == (0, 0, False, None)
    assert row.freins == () and row.identity is None
    assert row.vulnerability_flags == frozenset()


def test_comma_separator_bom_and_friendly_headers() -> None:
    header = [
        "Référence",
        "Chantier",
        "Programme",
        "Date d'entrée",
        "Situation logement",
        "Ressources",
        "Taille foyer",
        "Freins",
    ]
    body = "\ufeff" + ",".join(header) + "\n"
    body += 'CVG-9,Lyon-ACI-01,phc,2024-03-01,Rue,Non,1,"sante|mobilite"\n'
    result = _parse(body.encode("utf-8"))
    assert result.ok, _messages(result)
    assert result.delimiter == ","
    (row,) = result.rows
    assert (row.chantier, row.programme, row.housing) == ("lyon-aci-01", "phc", "street")


def test_semicolon_file_with_commas_in_cells() -> None:
    data = _csv(_row(nom='"Dupont, Marie"'), _row(reference="CVG-002"), header=[*HEADER, "nom"])
    result = _parse(data)
    assert result.ok, _messages(result)
    assert result.delimiter == ";"
    assert result.rows[0].identity is not None
    assert result.rows[0].identity.last_name == "Dupont, Marie"


def test_chantiers_with_programmes_check_the_programme() -> None:
    chantiers = {"paris-aci-01": {"cvg"}, "phc-hors-01": {"phc"}}
    data = _csv(_row(), _row(reference="P-1", chantier="phc-hors-01", programme="CVG"))
    result = _parse(data, chantiers=chantiers)
    assert _messages(result) == [
        "Ligne 3, colonne « programme » : le chantier « phc-hors-01 » ne porte pas le programme CVG."
    ]
    assert [r.reference for r in result.rows] == ["CVG-001"]


# --------------------------------------------------------------------- file-level errors


def test_empty_file() -> None:
    for data in (b"", b"\xef\xbb\xbf", b"  \r\n\n"):
        assert _messages(_parse(data)) == ["Fichier : le fichier est vide."]


def test_header_only() -> None:
    result = _parse(_csv())
    assert _messages(result) == ["Fichier : le fichier ne contient aucune salarié·e."]


def test_wrong_encoding_names_the_line() -> None:
    data = _csv(_row(), _row(reference="CVG-002", situation_logement="hébergé_tiers"))
    result = _parse(data.decode("utf-8").encode("cp1252"))
    (msg,) = _messages(result)
    assert msg.startswith("Fichier : le fichier n'est pas encodé en UTF-8 (ligne 3)")
    assert not result.rows


def test_single_column_file() -> None:
    result = _parse(b"reference\nCVG-1\n")
    (msg,) = _messages(result)
    assert "séparateur de colonnes introuvable" in msg


def test_tab_separated_file_is_refused() -> None:
    result = _parse(_csv(_row(), sep="\t"))
    assert "séparateur de colonnes introuvable" in _messages(result)[0]


def test_missing_required_columns_are_each_named() -> None:
    header = [c for c in HEADER if c not in ("chantier", "freins")]
    result = _parse(_csv(_row(), header=header))
    assert _messages(result) == [
        "Fichier, colonne « chantier » : colonne obligatoire absente.",
        "Fichier, colonne « freins » : colonne obligatoire absente.",
    ]
    assert not result.rows


def test_duplicate_and_unknown_columns() -> None:
    result = _parse(_csv(_row(), header=[*HEADER, "Chantier"]))
    assert _messages(result) == ["Ligne 1, colonne « Chantier » : colonne présente deux fois."]
    result = _parse(_csv(_row(), header=[*HEADER, "commentaire"]))
    assert result.ok
    assert [str(w) for w in result.warnings] == [
        "Ligne 1, colonne « commentaire » : colonne inconnue, ignorée."
    ]


# ---------------------------------------------------------------------- row-level errors


def test_unknown_chantier_message() -> None:
    result = _parse(
        _csv(_row(), _row(reference="CVG-002"), _row(reference="CVG-003", chantier="XYZ"))
    )
    assert _messages(result) == ["Ligne 4, colonne « chantier » : chantier « XYZ » inconnu."]
    assert len(result.rows) == 2


def test_bad_dates() -> None:
    result = _parse(
        _csv(
            _row(date_entree="31/02/2024"),
            _row(reference="B", date_entree="2024/01/15"),
            _row(reference="C", date_entree=""),
            _row(reference="D", date_entree="01/01/1850"),
        )
    )
    assert _messages(result) == [
        "Ligne 2, colonne « date_entree » : date « 31/02/2024 » invalide (formats acceptés : JJ/MM/AAAA ou AAAA-MM-JJ).",
        "Ligne 3, colonne « date_entree » : date « 2024/01/15 » invalide (formats acceptés : JJ/MM/AAAA ou AAAA-MM-JJ).",
        "Ligne 4, colonne « date_entree » : valeur obligatoire manquante.",
        "Ligne 5, colonne « date_entree » : date « 01/01/1850 » improbable.",
    ]


def test_exit_before_entry() -> None:
    result = _parse(
        _csv(_row(date_sortie="14/01/2024"), _row(reference="B", date_sortie="15/01/2024"))
    )
    assert _messages(result) == [
        "Ligne 2, colonne « date_sortie » : la date de sortie (14/01/2024) précède la date d'entrée (15/01/2024)."
    ]
    assert [r.reference for r in result.rows] == ["B"]


def test_referred_by_and_exit_category_are_coded_and_checked() -> None:
    header = [*HEADER, "Orienté par", "Catégorie de sortie"]
    good = _parse(
        _csv(
            _row(
                **{
                    "Orienté par": "115",
                    "date_sortie": "30/06/2024",
                    "Catégorie de sortie": "Emploi durable",
                }
            ),  # fmt: skip
            _row(reference="B", **{"Orienté par": "", "Catégorie de sortie": ""}),
            header=header,
        )
    )
    assert not good.errors
    assert [(r.referred_by, r.exit_category) for r in good.rows] == [
        ("siao_115", "emploi_durable"),
        (None, None),
    ]
    bad = _parse(
        _csv(
            _row(**{"Orienté par": "mairie", "Catégorie de sortie": ""}),
            _row(reference="B", **{"Orienté par": "ccas", "Catégorie de sortie": "autre"}),
            header=header,
        )
    )
    assert _messages(bad) == [
        "Ligne 2, colonne « oriente_par » : orienté par « mairie » invalide (attendu : siao_115, "
        "siao, 115, maraude, france_travail, ccas, autre).",
        "Ligne 3, colonne « categorie_sortie » : une catégorie de sortie demande une date_sortie.",
    ]


def test_unknown_frein_slugs_are_named() -> None:
    result = _parse(_csv(_row(freins="sante--acces-aux-soins|logement|emploi--cdi")))
    (msg,) = _messages(result)
    assert msg.startswith(
        "Ligne 2, colonne « freins » : thématiques inconnues « logement », « emploi--cdi »"
    )


def test_legacy_frein_slug_is_rewritten_with_a_warning() -> None:
    result = _parse(_csv(_row(freins="famille--violences-intrafamiliales")))
    assert result.ok
    assert result.rows[0].freins == ("famille--surmonter-conflits-separation-violence",)
    (warning,) = result.warnings
    assert warning.line == 2 and warning.column == "freins"


def test_duplicate_reference_names_the_first_line() -> None:
    result = _parse(_csv(_row(), _row(reference="B"), _row()))
    assert _messages(result) == [
        "Ligne 4, colonne « reference » : référence « CVG-001 » déjà présente ligne 2."
    ]
    assert [r.reference for r in result.rows] == ["CVG-001", "B"]


def test_bad_reference() -> None:
    result = _parse(_csv(_row(reference="Jean Dupont"), _row(reference="")))
    assert [e.column for e in result.errors] == ["reference", "reference"]
    assert "invalide" in result.errors[0].message
    assert result.errors[1].message == "valeur obligatoire manquante"


def test_bad_programme() -> None:
    result = _parse(_csv(_row(programme="ACI"), _row(reference="B", programme="")))
    assert _messages(result) == [
        "Ligne 2, colonne « programme » : programme « ACI » invalide (attendu : CVG ou PHC).",
        "Ligne 3, colonne « programme » : programme vide invalide (attendu : CVG ou PHC).",
    ]


def test_bad_integers() -> None:
    result = _parse(
        _csv(
            _row(taille_foyer="deux"),
            _row(reference="B", mois_rue="-3"),
            _row(reference="C", taille_foyer="2.5"),
            _row(reference="D", taille_foyer="0"),
            _row(reference="E", mois_rue="12", taille_foyer="3", enfants_mineurs="1"),
        )
    )
    assert _messages(result) == [
        "Ligne 2, colonne « taille_foyer » : « deux » n'est pas un nombre entier entre 1 et 20.",
        "Ligne 3, colonne « mois_rue » : « -3 » n'est pas un nombre entier entre 0 et 720.",
        "Ligne 4, colonne « taille_foyer » : « 2.5 » n'est pas un nombre entier entre 1 et 20.",
        "Ligne 5, colonne « taille_foyer » : « 0 » n'est pas un nombre entier entre 1 et 20.",
    ]
    assert [r.street_months for r in result.rows] == [12]


def test_more_children_than_household() -> None:
    result = _parse(_csv(_row(taille_foyer="2", enfants_mineurs="2")))
    (err,) = result.errors
    assert (err.line, err.column) == (2, "enfants_mineurs")


def test_bad_enumerations() -> None:
    result = _parse(
        _csv(
            _row(situation_logement="squat"),
            _row(reference="B", ressources="peut-être"),
            _row(reference="C", ressources=""),
        )
    )
    assert [(e.line, e.column) for e in result.errors] == [
        (2, "situation_logement"),
        (3, "ressources"),
        (4, "ressources"),
    ]
    assert "rue, hebergement_urgence" in result.errors[0].message


def test_bad_vulnerability() -> None:
    header = [*HEADER, "vulnerabilites"]
    result = _parse(_csv(_row(vulnerabilites="violences|maladie"), header=header))
    assert _messages(result)[0].startswith(
        "Ligne 2, colonne « vulnerabilites » : vulnérabilité « maladie » inconnue"
    )


def test_all_errors_of_a_row_are_reported() -> None:
    result = _parse(_csv(_row(chantier="X", programme="Y", date_entree="Z")))
    assert [e.column for e in result.errors] == ["chantier", "programme", "date_entree"]


def test_too_many_values_on_a_line() -> None:
    data = _csv(_row()).replace(b"mobilite\n", b"mobilite;en trop\n")
    (msg,) = _messages(_parse(data))
    assert msg.startswith("Ligne 2 : la ligne compte 12 valeurs pour 11 colonnes")


def test_line_numbers_follow_the_spreadsheet() -> None:
    # a blank line still counts, a quoted multi-line cell is one line
    data = _csv(_row(), _row(reference="B"), header=[*HEADER, "nom"])
    data = data.replace(b"CVG-001;", b"\nCVG-001;", 1)
    data = data.replace(b"mobilite\nB", b'mobilite;"ligne 1\nligne 2"\nB', 1)
    data += b"C;XYZ;CVG;15/01/2024;;loge;0;oui;1;0;\n"
    result = _parse(data)
    assert _messages(result) == ["Ligne 5, colonne « chantier » : chantier « XYZ » inconnu."]
    assert [r.line for r in result.rows] == [3, 4]


def test_identity_errors_do_not_echo_the_values() -> None:
    header = [*HEADER, "courriel", "telephone", "date_naissance"]
    row = _row(courriel="marie.dupont-at-mail", telephone="appeler Marie", date_naissance="hier")
    result = _parse(_csv(row, header=header))
    assert [e.column for e in result.errors] == ["date_naissance", "courriel", "telephone"]
    report = format_report(result)
    assert "marie" not in report.lower() and "hier" not in report
    late = _row(date_naissance="16/01/2024")
    assert [e.column for e in _parse(_csv(late, header=header)).errors] == ["date_naissance"]


# -------------------------------------------------------------- re-import and reporting


def test_existing_references_are_informative_only() -> None:
    data = _csv(_row(), _row(reference="B"))
    result = _parse(data, existing_references={"B", "ZZZ"})
    assert result.ok
    assert result.existing_references == {"B"}
    report = format_report(result)
    assert "1 nouvelle salarié·e, 1 déjà connue" in report


def test_digest_ignores_the_line_but_not_the_content() -> None:
    first = _parse(_csv(_row(), _row(reference="B"))).rows
    again = _parse(_csv(_row(reference="B"), _row())).rows
    assert first[0].line != again[1].line
    assert first[0].digest() == again[1].digest()
    changed = _parse(_csv(_row(taille_foyer="3"))).rows[0]
    assert changed.digest() != first[0].digest()
    reordered = _parse(_csv(_row(freins="mobilite|sante--acces-aux-soins"))).rows[0]
    assert reordered.digest() != first[0].digest()  # order is kept: the first frein is the main one


def test_format_report_lists_errors_and_warnings() -> None:
    result = _parse(
        _csv(_row(chantier="XYZ"), _row(reference="B", freins="sante--constituer-un-dossier-mdph"))
    )
    assert format_report(result).splitlines() == [
        "Import des salarié·es : 2 lignes lues, 1 valide, 1 erreur à corriger.",
        "Ligne 2, colonne « chantier » : chantier « XYZ » inconnu.",
        "Avertissements :",
        "Ligne 3, colonne « freins » : thématique « sante--constituer-un-dossier-mdph » remplacée par "
        "« sante--constituer-un-dossier-mdph-invalidite » (référentiel v1).",
    ]
    ok = _parse(_csv(_row()))
    assert format_report(ok) == "Import des salarié·es : 1 ligne lue, 1 valide, aucune erreur."


# ------------------------------------------------------------------------------ properties


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_give_a_result_never_an_exception(data: bytes) -> None:
    result = _parse(data)
    assert result.rows or result.errors


_cells = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)


@settings(max_examples=100, deadline=None)
@given(
    refs=st.lists(
        st.from_regex(r"[A-Z]{2}-[0-9]{1,4}", fullmatch=True), min_size=1, max_size=8, unique=True
    ),
    freins=st.lists(st.sampled_from(sorted(THEMATIQUES)), max_size=4, unique=True),
    name=_cells,
    sep=st.sampled_from([";", ","]),
)
def test_generated_valid_files_round_trip(
    refs: list[str], freins: list[str], name: str, sep: str
) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=sep)
    writer.writerow([*HEADER, "nom"])
    for ref in refs:
        row = _row(reference=ref, freins="|".join(freins))
        writer.writerow([*(row[c] for c in HEADER), name])
    result = _parse(buf.getvalue().encode("utf-8"))
    assert result.ok, _messages(result)
    assert [r.reference for r in result.rows] == refs
    assert all(r.freins == tuple(freins) for r in result.rows)
    expected = name.strip()
    assert all((r.identity.last_name if r.identity else "") == expected for r in result.rows)

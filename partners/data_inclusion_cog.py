"""The INSEE *Code officiel géographique* (COG) as a small table: which département a commune
or an EPCI code lies in.

Why: data·inclusion's ``zone_eligibilite`` lists COG codes — communes, départements, EPCI —
while the network's territories are sets of départements (``territory.departments``). A
commune's département cannot be read from its code alone (Corsica's ``2A``/``2B``, overseas
``97x``), an EPCI has no département in its code at all, and a code that does not exist must
be refused rather than silently matching nothing. So the codes come from a table, and the
table comes from a maintained source, never typed by hand:

- source: the npm package ``@etalab/decoupage-administratif`` (Etalab / DINUM), version 6.0.0,
  *millésime* 2026: INSEE's COG (communes, communes déléguées and associées, municipal
  arrondissements, départements) and the DGCL list of EPCI à fiscalité propre, plus the EPT of
  the Métropole du Grand Paris; Licence Ouverte. No PyPI package ships these tables (the PyPI
  candidates are API clients that download at run time), and ``data-inclusion-schema`` checks
  only the *shape* of a code.
- built on 2026-12-05 by ``python -m partners.data_inclusion_cog PACKAGE_DIR`` (this module),
  where PACKAGE_DIR is the unpacked npm tarball (``npm pack @etalab/decoupage-administratif``);
  the output ``partners/data/cog.json`` records the source, the version and the date. Rebuild
  it once a year, when the new *millésime* is published.

Pure: standard library only.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

FRANCE = "france"
FRANCE_COUNTRY_CODE = "99100"  # the COG country code of France: the same as "france"
SOURCE_PACKAGE = "@etalab/decoupage-administratif"


@dataclass(frozen=True, slots=True)
class CogTable:
    """Départements, communes and EPCI of one COG *millésime*."""

    departements: dict[str, str]  # code -> name
    commune_departement: dict[str, str]  # commune code -> département code
    epci_departements: dict[str, tuple[str, ...]]  # SIREN -> départements of its communes
    source: str
    millesime: str

    def kind(self, code: str) -> str | None:
        """ "commune", "departement", "epci", "france", "pays" or None (not a COG code)."""
        if code in (FRANCE, FRANCE_COUNTRY_CODE):
            return "france"
        if code in self.departements:
            return "departement"
        if code in self.commune_departement:
            return "commune"
        if code in self.epci_departements:
            return "epci"
        if len(code) == 5 and code.startswith("99") and code.isdigit() and code[2] in "012345":
            return "pays"  # a foreign country: valid, and outside every territory
        return None

    def departements_of(self, code: str) -> tuple[str, ...]:
        """The départements a commune, département or EPCI code lies in (() otherwise)."""
        if code in self.departements:
            return (code,)
        dep = self.commune_departement.get(code)
        if dep is not None:
            return (dep,)
        return self.epci_departements.get(code, ())


@cache
def default_cog() -> CogTable:
    """The table shipped with the package (``partners/data/cog.json``), read once."""
    text = resources.files("partners").joinpath("data/cog.json").read_text(encoding="utf-8")
    return parse_cog(json.loads(text))


def parse_cog(raw: dict[str, Any]) -> CogTable:
    """The table from its JSON form (see :func:`build_table`)."""
    communes: dict[str, str] = {}
    for dep, codes in raw["communes"].items():
        for code in codes.split():
            communes[code] = dep
    return CogTable(
        departements=dict(raw["departements"]),
        commune_departement=communes,
        epci_departements={k: tuple(v) for k, v in raw["epci"].items()},
        source=str(raw["source"]),
        millesime=str(raw["millesime"]),
    )


# ------------------------------------------------------------------------------- building


def build_table(package_dir: Path, *, built_on: date) -> dict[str, Any]:
    """The JSON form of the table from the unpacked ``@etalab/decoupage-administratif``.

    Communes are grouped by département (codes separated by spaces: ~250 kB for 37,000
    codes); each EPCI (and EPT) lists the départements of its member communes."""
    data = package_dir / "data"
    meta = json.loads((package_dir / "package.json").read_text(encoding="utf-8"))
    departements = json.loads((data / "departements.json").read_text(encoding="utf-8"))
    communes = json.loads((data / "communes.json").read_text(encoding="utf-8"))
    groups: list[dict[str, Any]] = json.loads((data / "epci.json").read_text(encoding="utf-8"))
    ept = data / "ept.json"
    if ept.exists():
        groups += json.loads(ept.read_text(encoding="utf-8"))
    by_dep: dict[str, list[str]] = {}
    dep_of: dict[str, str] = {}
    for c in communes:
        dep_of.setdefault(c["code"], c["departement"])
        by_dep.setdefault(c["departement"], [])
        if c["code"] not in by_dep[c["departement"]]:
            by_dep[c["departement"]].append(c["code"])
    epci: dict[str, list[str]] = {}
    for g in groups:
        deps = sorted({dep_of[m["code"]] for m in g.get("membres", []) if m["code"] in dep_of})
        if deps:
            epci[g["code"]] = deps
    version = str(meta.get("version", "?"))
    return {
        "source": (
            f"{SOURCE_PACKAGE} {version} (npm) : Code officiel géographique de l'INSEE et "
            "EPCI de la DGCL ; Licence Ouverte"
        ),
        "millesime": _millesime(version),
        "built_on": built_on.isoformat(),
        "departements": {d["code"]: d["nom"] for d in departements},
        "communes": {dep: " ".join(sorted(codes)) for dep, codes in sorted(by_dep.items())},
        "epci": dict(sorted(epci.items())),
    }


def _millesime(version: str) -> str:
    # The package's major version follows the COG year (README: 6.x = 2026, 5.x = 2025...).
    try:
        return str(2020 + int(version.split(".")[0]))
    except ValueError:
        return "?"


def main(argv: Iterable[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage : python -m partners.data_inclusion_cog DOSSIER_DU_PAQUET", file=sys.stderr)
        return 2
    table = build_table(Path(args[0]), built_on=date.today())
    out = Path(__file__).parent / "data" / "cog.json"
    out.write_text(json.dumps(table, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(
        f"{out} : {len(table['departements'])} départements, "
        f"{sum(len(v.split()) for v in table['communes'].values())} communes, "
        f"{len(table['epci'])} EPCI ({table['source']})."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Generated data·inclusion exports, built from the schema package's own models.

Why: tests, benches and ``make demo`` need files of thousands of services that look like the
weekly open-data export — without downloading it (the machines are offline) and without
personal data. Every service is a ``data_inclusion.schema.v1.Service`` (so a generated file
is valid by construction), drawn deterministically from a seed: the same arguments always
give the same bytes. The zones are real COG codes of the territories' départements (a
département, one of its communes, an EPCI, sometimes ``france``, sometimes elsewhere).

Pure: standard library and the schema package.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Collection, Iterable, Mapping
from datetime import date, timedelta
from typing import Any

from data_inclusion.schema import v1

from partners.data_inclusion_cog import CogTable, default_cog

SOURCES = ("dora", "emplois-de-linclusion", "france-travail", "soliguide", "mes-aides")
NETWORK_CATEGORIES = (
    "logement-hebergement",
    "sante",
    "trouver-un-emploi",
    "preparer-sa-candidature",
    "choisir-un-metier",
    "se-former",
    "lecture-ecriture-calcul",
    "mobilite",
    "difficultes-financieres",
    "difficultes-administratives-ou-juridiques",
    "famille",
    "numerique",
    "equipement-et-alimentation",
    "remobilisation",
)
_KINDS = ("Permanence", "Atelier", "Accompagnement", "Accueil", "Point conseil", "Service")
_PUBLICS = [p for p in v1.Public if p is not v1.Public.TOUS_PUBLICS]
_LIST_COLUMNS = (
    "thematiques",
    "publics",
    "modes_accueil",
    "zone_eligibilite",
    "modes_mobilisation",
    "mobilisable_par",
)


def _sub_thematiques() -> dict[str, list[v1.Thematique]]:
    by_category: dict[str, list[v1.Thematique]] = {}
    for t in v1.Thematique:
        by_category.setdefault(t.value.split("--", 1)[0], []).append(t)
    return by_category


def generate_services(
    count: int,
    *,
    seed: int,
    today: date,
    territories: Mapping[str, Collection[str]],
    cog: CogTable | None = None,
    national_share: float = 0.03,
    outside_share: float = 0.05,
    stale_share: float = 0.1,
    courriel_share: float = 0.5,
) -> list[v1.Service]:
    """``count`` valid services spread over the territories' départements.

    ``stale_share`` of them were last updated 13 to 30 months before ``today``;
    ``courriel_share`` have a public e-mail address (at example.org: never a real one)."""
    cog = cog or default_cog()
    rng = random.Random(seed)
    by_category = _sub_thematiques()
    categories = [c for c in NETWORK_CATEGORIES if c in by_category]
    deps = sorted({d for ds in territories.values() for d in ds})
    communes: dict[str, list[str]] = {d: [] for d in deps}
    for code, dep in cog.commune_departement.items():
        if dep in communes:
            communes[dep].append(code)
    for d in communes:
        communes[d].sort()
    epcis: dict[str, list[str]] = {d: [] for d in deps}
    for code, eds in sorted(cog.epci_departements.items()):
        if len(eds) == 1 and eds[0] in epcis:
            epcis[eds[0]].append(code)
    elsewhere = sorted(d for d in cog.departements if d not in communes and len(d) == 2)
    today_ordinal = today.toordinal()
    services: list[v1.Service] = []
    for n in range(1, count + 1):
        source = SOURCES[n % len(SOURCES)]
        category = rng.choice(categories)
        subs = by_category[category]
        thematiques = set(rng.sample(subs, k=min(len(subs), rng.choice((1, 1, 2, 3)))))
        roll = rng.random()
        if roll < national_share:
            zone: list[str] = ["france"]
            dep = rng.choice(deps)
        elif roll < national_share + outside_share:
            dep = rng.choice(elsewhere)
            zone = [dep]
        else:
            dep = rng.choice(deps)
            pick = rng.random()
            if pick < 0.5 or not communes[dep]:
                zone = [dep]
            elif pick < 0.85 or not epcis[dep]:
                zone = [rng.choice(communes[dep])]
            else:
                zone = [rng.choice(epcis[dep])]
        age = rng.randint(400, 900) if rng.random() < stale_share else rng.randint(0, 330)
        date_maj = date.fromordinal(today_ordinal - age)
        label = sorted(thematiques)[0].label
        dep_name = "France entière" if zone == ["france"] else cog.departements.get(dep, dep)
        nom = f"{rng.choice(_KINDS)} {label.lower()} — {dep_name}"[:150]
        modes = set(rng.sample(list(v1.ModeMobilisation), k=rng.choice((1, 1, 2))))
        courriel = None
        if rng.random() < courriel_share:
            courriel = f"contact-{n}@example.org"
            modes.add(v1.ModeMobilisation.ENVOYER_UN_COURRIEL)
        else:
            modes.discard(v1.ModeMobilisation.ENVOYER_UN_COURRIEL)
            if not modes:
                modes.add(v1.ModeMobilisation.TELEPHONER)
        publics = (
            {v1.Public.TOUS_PUBLICS}
            if rng.random() < 0.5
            else set(rng.sample(_PUBLICS, k=rng.choice((1, 2))))
        )
        commune_code = rng.choice(communes[dep]) if communes.get(dep) else None
        services.append(
            v1.Service(
                source=source,
                structure_id=f"{source}--structure-{(n - 1) // 3 + 1}",
                id=f"{source}--service-{n}",
                nom=nom,
                description=(
                    f"{nom}. Le service accueille les personnes orientées par un·e "
                    "professionnel·le de l'insertion ; prendre contact avant de venir."
                ),
                date_maj=date_maj,
                thematiques=thematiques,
                publics=publics,
                conditions_acces=(
                    "Sur orientation d'un·e professionnel·le." if rng.random() < 0.3 else None
                ),
                frais=rng.choice(list(v1.Frais)),
                modes_accueil={rng.choice(list(v1.ModeAccueil))},
                zone_eligibilite=zone,
                modes_mobilisation=modes,
                mobilisable_par={v1.PersonneMobilisatrice.PROFESSIONNELS},
                courriel=courriel,
                telephone=f"+3310{n % 100_000_000:08d}"
                if v1.ModeMobilisation.TELEPHONER in modes
                else None,
                lien_mobilisation=f"https://services.example.org/{source}/{n}"
                if v1.ModeMobilisation.UTILISER_LIEN_MOBILISATION in modes
                else None,
                adresse=f"{rng.randint(1, 120)} rue de la République"
                if v1.ModeMobilisation.SE_PRESENTER in modes
                else None,
                code_insee=commune_code,
            )
        )
    return services


def service_rows(services: Iterable[v1.Service]) -> list[dict[str, Any]]:
    """The services as the export's JSON objects (enums as their slugs, sets sorted)."""
    rows = []
    for s in services:
        row = s.model_dump(mode="json", exclude_none=True)
        for k in _LIST_COLUMNS:
            if isinstance(row.get(k), list):
                row[k] = sorted(row[k]) if k != "zone_eligibilite" else row[k]
        rows.append(row)
    return rows


def services_json(services: Iterable[v1.Service] | list[dict[str, Any]]) -> bytes:
    """A JSON export (a list of objects), as data·inclusion publishes it."""
    return json.dumps(_as_rows(services), ensure_ascii=False, indent=1).encode("utf-8")


def services_csv(services: Iterable[v1.Service] | list[dict[str, Any]]) -> bytes:
    """A CSV export: one column per field, lists as JSON arrays."""
    rows = _as_rows(services)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow(
            [
                json.dumps(r[c], ensure_ascii=False) if isinstance(r.get(c), list) else r.get(c, "")
                for c in columns
            ]
        )
    return out.getvalue().encode("utf-8")


def structures_json(services: Iterable[v1.Service], *, today: date) -> bytes:
    """The structures file matching ``services`` (one structure per ``structure_id``)."""
    seen: dict[str, v1.Structure] = {}
    for s in services:
        if s.structure_id not in seen:
            number = s.structure_id.rsplit("-", 1)[-1]
            seen[s.structure_id] = v1.Structure(
                source=s.source,
                id=s.structure_id,
                nom=f"Structure d'accompagnement n° {number}",
                date_maj=today - timedelta(days=30),
            )
    return json.dumps(
        [st.model_dump(mode="json", exclude_none=True) for st in seen.values()],
        ensure_ascii=False,
    ).encode("utf-8")


def _as_rows(services: Iterable[v1.Service] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    items = list(services)
    if items and isinstance(items[0], dict):
        return [dict(r) for r in items]  # type: ignore[arg-type]
    return service_rows(items)  # type: ignore[arg-type]

"""Services of the national referential (data·inclusion, schema v1): parsing, validation and
mapping to the network's territories and domains — the pure part of ``import services``.

Why: social workers already find services through data·inclusion, the national referential
of the *offre d'insertion*, published every week as open data (JSON, CSV...). A catalogue a
territory types by hand is out of date the day it is written; this module turns an export
into typed records the engine can upsert, or into a French report naming each bad row and
field — never half of a file.

- Each row is validated by the maintained ``data-inclusion-schema`` package
  (``data_inclusion.schema.v1.Service``: required fields, enums of thématiques, publics and
  modes, ``tous-publics`` alone, COG code shapes, e-mail and URL formats).
- Then the checks the schema cannot make: the upsert key ``source--id`` appears once, and
  every ``zone_eligibilite`` code exists in the COG (``partners.data_inclusion_cog``).
- ``zone_eligibilite`` → territories: ``france`` (or ``99100``) is national; a département
  code maps to the territories whose ``departments`` list it; a commune or EPCI code through
  the département(s) it lies in. Territories are départements, so a commune-level zone is
  widened to its département's territory (the case page says which zone the service states).
  Without a zone, the service's own commune (``code_insee``) is used.
- ``thematiques`` → domains through ``partners.taxonomy`` (the network's referential is v1
  minus two categories: creer-une-entreprise and souvrir-a-linternational, kept for display
  but never routed).
- ``publics`` and ``conditions_acces`` are kept as text to show, not turned into rules: a
  chargé·e may attach structured rules (``partners.eligibility_rules``) to the offer.
- Freshness: a service whose ``date_maj`` is more than 12 months old, or whose
  ``score_qualite`` is below 0.5, is *à vérifier* (:func:`review_reasons`). When the file has
  no ``score_qualite``, it is computed with the schema package's own criteria
  (``data_inclusion.schema.v1.score_qualite``) minus ``date_maj_recente``, which reads the
  wall clock and which the 12-month rule already covers.

Pure: standard library, pydantic and the schema package.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

from data_inclusion.schema import v1
from pydantic import ValidationError

from partners.data_inclusion_cog import FRANCE, FRANCE_COUNTRY_CODE, CogTable, default_cog
from partners.data_inclusion_review import (  # noqa: F401  (re-exported)
    LOW_QUALITY_SCORE,
    STALE_AFTER_MONTHS,
    is_stale,
    months_before,
    review_reasons,
)
from partners.taxonomy import DOMAINS, THEMATIQUES, domain_of

MAX_REPORTED_ERRORS = 500  # a whole file of errors: the first ones, then a count

LIST_FIELDS = frozenset(
    {
        "thematiques",
        "publics",
        "modes_accueil",
        "zone_eligibilite",
        "modes_mobilisation",
        "mobilisable_par",
        "reseaux_porteurs",
    }
)

FIELD_LABELS: dict[str, str] = {
    "thematiques": "thématique",
    "publics": "public",
    "modes_accueil": "mode d'accueil",
    "modes_mobilisation": "mode de mobilisation",
    "mobilisable_par": "valeur",
    "frais": "valeur",
    "type": "type de service",
    "reseaux_porteurs": "réseau porteur",
}

# French labels of the schema's enums, shown in the directory and on the case page.
PUBLIC_LABELS: dict[str, str] = {p.value: p.label for p in v1.Public}
MODE_MOBILISATION_LABELS: dict[str, str] = {p.value: p.label for p in v1.ModeMobilisation}
MODE_ACCUEIL_LABELS: dict[str, str] = {p.value: p.label for p in v1.ModeAccueil}
MOBILISABLE_PAR_LABELS: dict[str, str] = {p.value: p.label for p in v1.PersonneMobilisatrice}
V1_THEMATIQUE_LABELS: dict[str, str] = {t.value: t.label for t in v1.Thematique}


# ------------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class ServiceError:
    """One problem, located as the user sees it: a CSV line (header = line 1) or the n-th
    element of a JSON list, with the service's id when it has one."""

    where: str | None  # "Ligne 4", "Service n° 12"; None: the whole file
    field: str | None
    message: str
    ident: str | None = None
    file: str | None = None  # set for the structures file

    def __str__(self) -> str:
        parts = [self.file] if self.file else []
        if self.where is None:
            parts.append("Fichier")
        else:
            parts.append(self.where + (f" (« {self.ident} »)" if self.ident else ""))
        head = ", ".join(parts)
        if self.field:
            head += f", champ « {self.field} »"
        return f"{head} : {self.message}."


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    """One valid service, mapped: what the engine stores (everything but ``where``)."""

    key: str  # "source--id": the upsert key
    source: str
    id: str
    structure_id: str
    structure_name: str | None
    nom: str
    description: str
    date_maj: date
    thematiques: tuple[str, ...]  # every v1 slug of the service, sorted
    routable: tuple[str, ...]  # those of the network's taxonomy: the offer's thématiques
    domain: str | None  # the principal domain of ``routable``
    zone: tuple[str, ...]  # the COG codes as given
    territories: tuple[str, ...] | None  # None: national (``france``)
    score_qualite: float | None
    score_computed: bool
    publics: tuple[str, ...] = ()
    publics_precisions: str | None = None
    conditions_acces: str | None = None
    frais: str | None = None
    modes_accueil: tuple[str, ...] = ()
    modes_mobilisation: tuple[str, ...] = ()
    mobilisable_par: tuple[str, ...] = ()
    mobilisation_precisions: str | None = None
    courriel: str | None = None  # null in the export when not public
    telephone: str | None = None
    lien_mobilisation: str | None = None
    lien_source: str | None = None
    adresse: str | None = None
    code_postal: str | None = None
    commune: str | None = None
    where: str = field(default="", compare=False)

    def as_dict(self) -> dict[str, Any]:
        """Every field but ``where`` (a shallow copy: ``dataclasses.asdict`` deep-copies)."""
        return {f: getattr(self, f) for f in _RECORD_FIELDS}

    def digest(self) -> str:
        """Stable hash of the record: a re-import of an unchanged service writes nothing."""
        blob = json.dumps(self.as_dict(), sort_keys=True, default=str, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def details(self) -> dict[str, Any]:
        """The fields shown to users and not routed on (stored as JSON)."""
        return {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in self.as_dict().items()
            if k not in _NOT_DETAILS
        }

    @property
    def national(self) -> bool:
        return self.territories is None

    @property
    def in_network(self) -> bool:
        """Whether routing can ever propose it: a thématique of the network and a zone that
        reaches a territory (or the whole country)."""
        return bool(self.routable) and (self.territories is None or bool(self.territories))


_RECORD_FIELDS = tuple(f.name for f in fields(ServiceRecord) if f.name != "where")
_NOT_DETAILS = frozenset(
    {
        "key",
        "source",
        "structure_id",
        "structure_name",
        "date_maj",
        "routable",
        "domain",
        "territories",
        "score_qualite",
    }
)


@dataclass(slots=True)
class ParseResult:
    records: list[ServiceRecord] = field(default_factory=list)
    errors: list[ServiceError] = field(default_factory=list)
    rows_read: int = 0
    format: str = ""
    structures_read: int = 0
    sources: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.errors


# ------------------------------------------------------------------------ mapping helpers


def _n(n: int, singular: str, plural: str) -> str:
    """ "1 service lu", "2 services lus" (``partners`` is pure: no engine helper here)."""
    return f"{n} {singular if abs(n) < 2 else plural}"


def upsert_key(source: str, service_id: str) -> str:
    """``source--id``: data·inclusion ids usually carry their producer already."""
    return service_id if service_id.startswith(source + "--") else f"{source}--{service_id}"


def domains_of(thematiques: Iterable[str]) -> tuple[str, ...]:
    """The domains of the network's thématiques among ``thematiques``, in DOMAINS order."""
    found = {domain_of(t) for t in thematiques if t in THEMATIQUES}
    return tuple(d for d in DOMAINS if d in found)


def principal_domain(thematiques: Iterable[str]) -> str | None:
    """The domain most of the service's thématiques belong to (ties: DOMAINS order)."""
    counts = Counter(domain_of(t) for t in thematiques if t in THEMATIQUES)
    if not counts:
        return None
    return max(DOMAINS, key=lambda d: (counts.get(d, 0), -DOMAINS.index(d)))


def department_index(territories: Mapping[str, Collection[str]]) -> dict[str, tuple[str, ...]]:
    """département code -> the territory codes that include it."""
    index: dict[str, list[str]] = {}
    for code, deps in sorted(territories.items()):
        for dep in deps:
            index.setdefault(dep.strip(), []).append(code)
    return {dep: tuple(codes) for dep, codes in index.items()}


def territories_of(
    zone: Iterable[str], cog: CogTable, by_department: Mapping[str, Collection[str]]
) -> tuple[str, ...] | None:
    """Territory codes a zone of COG codes reaches (sorted), or None for the whole country."""
    codes = list(zone)
    if any(c in (FRANCE, FRANCE_COUNTRY_CODE) for c in codes):
        return None
    found: set[str] = set()
    for code in codes:
        for dep in cog.departements_of(code):
            found.update(by_department.get(dep, ()))
    return tuple(sorted(found))


def quality_score(service: v1.Service) -> float:
    """data·inclusion's quality score from its own criteria, without the wall-clock one."""
    from data_inclusion.schema.v1 import score_qualite

    results = [
        c(service) for c in score_qualite.CRITERES if c is not score_qualite.date_maj_recente
    ]
    kept = [round(r, 2) for r in results if r is not None]
    return round(sum(kept) / len(kept), 2) if kept else 0.0


# What a partner name may hold to be printed in a mail (``notifications.fields.PlaceName``).
_MAIL_NAME_KEEP = re.compile(r"[^\w'’ .,()/&+—–-]+")
MAIL_NAME_LENGTH = 80


def mail_safe_name(name: str) -> str:
    """A partner name the mails accept: other characters become spaces, at most 80
    characters cut at a word. Imported names are free text of up to 150 characters."""
    text = " ".join(_MAIL_NAME_KEEP.sub(" ", name.replace("n°", "no")).split())
    if len(text) > MAIL_NAME_LENGTH:
        head = text[: MAIL_NAME_LENGTH + 1]
        cut = head.rsplit(" ", 1)[0] if " " in head else ""
        text = (cut if len(cut) >= 20 else text[:MAIL_NAME_LENGTH]).rstrip(" ,.-—–")
    return text or "Service data-inclusion"


def fold(text: str) -> str:
    """Lower case without accents: the directory's search compares folded text."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# ------------------------------------------------------------------------------- parsing


def parse_services(
    data: bytes,
    *,
    filename: str,
    territories: Mapping[str, Collection[str]],
    structures: bytes | None = None,
    structures_filename: str = "structures",
    cog: CogTable | None = None,
) -> ParseResult:
    """Parse and validate a data·inclusion services export (``.json`` or ``.csv``, UTF-8).

    ``territories`` maps each territory code to its départements. Every problem of the file
    is collected (all-or-nothing: the caller writes nothing when ``errors`` is not empty)."""
    cog = cog or default_cog()
    result = ParseResult()
    names: dict[str, str] = {}
    if structures is not None:
        names = _parse_structures(structures, structures_filename, result)
    rows = _rows(data, filename, result)
    if rows is None:
        return result
    by_department = department_index(territories)
    first_seen: dict[str, str] = {}
    for where, raw in rows:
        result.rows_read += 1
        record = _parse_row(where, raw, cog, by_department, names, result)
        if record is None:
            continue
        if record.key in first_seen:
            result.errors.append(
                ServiceError(
                    where,
                    "id",
                    f"identifiant « {record.key} » déjà présent ({first_seen[record.key].lower()})",
                    ident=record.id,
                )
            )
            continue
        first_seen[record.key] = where
        result.records.append(record)
        result.sources.add(record.source)
    if result.rows_read == 0 and not result.errors:
        result.errors.append(ServiceError(None, None, "le fichier ne contient aucun service"))
    return result


def format_report(result: ParseResult, *, filename: str = "") -> str:
    """The French report of a parse: counts, then each error (the first 500)."""
    head = f"Import des services data·inclusion{f' ({filename})' if filename else ''} : "
    head += f"{_n(result.rows_read, 'service lu', 'services lus')}, "
    head += _n(len(result.records), "valide", "valides")
    errors = f", {_n(len(result.errors), 'erreur', 'erreurs')} à corriger."
    lines = [head + (errors if result.errors else ".")]
    lines.extend(str(e) for e in result.errors[:MAX_REPORTED_ERRORS])
    if len(result.errors) > MAX_REPORTED_ERRORS:
        more = len(result.errors) - MAX_REPORTED_ERRORS
        lines.append(f"… et {_n(more, 'autre erreur', 'autres erreurs')}.")
    return "\n".join(lines)


def _decode(data: bytes, file: str | None, result: ParseResult) -> str | None:
    body = data.removeprefix(b"\xef\xbb\xbf")
    if not body.strip():
        result.errors.append(ServiceError(None, None, "le fichier est vide", file=file))
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        result.errors.append(
            ServiceError(
                f"Ligne {line}",
                None,
                "le fichier n'est pas encodé en UTF-8 (octet "
                f"0x{body[exc.start]:02x} illisible) ; exportez-le ou enregistrez-le en UTF-8",
                file=file,
            )
        )
        return None


def _kind(filename: str, text: str) -> str:
    lower = filename.lower()
    if lower.endswith(".json"):
        return "json"
    if lower.endswith(".csv"):
        return "csv"
    return "json" if text.lstrip()[:1] in ("[", "{") else "csv"


def _rows(
    data: bytes, filename: str, result: ParseResult, *, file: str | None = None
) -> list[tuple[str, dict[str, Any]]] | None:
    """(where, raw row) of a JSON list or CSV export; None after a file-level error."""
    text = _decode(data, file, result)
    if text is None:
        return None
    kind = result.format = _kind(filename, text)
    if kind == "json":
        return _json_rows(text, result, file)
    return _csv_rows(text, result, file)


def _json_rows(
    text: str, result: ParseResult, file: str | None
) -> list[tuple[str, dict[str, Any]]] | None:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        result.errors.append(
            ServiceError(
                f"Ligne {exc.lineno}",
                None,
                f"JSON invalide (colonne {exc.colno} : {exc.msg})",
                file=file,
            )
        )
        return None
    if isinstance(raw, dict):  # the API's pages: {"items": [...]}
        pages = [raw[k] for k in ("items", "data", "results") if isinstance(raw.get(k), list)]
        raw = pages[0] if pages else raw
    if not isinstance(raw, list):
        result.errors.append(
            ServiceError(None, None, "une liste d'objets JSON est attendue", file=file)
        )
        return None
    rows: list[tuple[str, dict[str, Any]]] = []
    what = "Structure" if file else "Service"
    for n, item in enumerate(raw, start=1):
        where = f"{what} n° {n}"
        if not isinstance(item, dict):
            result.errors.append(ServiceError(where, None, "objet JSON attendu", file=file))
            continue
        rows.append((where, item))
    return rows


def _csv_rows(
    text: str, result: ParseResult, file: str | None
) -> list[tuple[str, dict[str, Any]]] | None:
    first = text.lstrip("\r\n").split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        result.errors.append(ServiceError(None, None, f"fichier CSV illisible ({exc})", file=file))
        return None
    start = next((i for i, r in enumerate(records) if any(c.strip() for c in r)), None)
    if start is None:
        result.errors.append(ServiceError(None, None, "ligne d'en-tête introuvable", file=file))
        return None
    header = [h.strip().lstrip("\ufeff") for h in records[start]]
    rows: list[tuple[str, dict[str, Any]]] = []
    for line, record in enumerate(records[start + 1 :], start=start + 2):
        if not any(c.strip() for c in record):
            continue
        where = f"Ligne {line}"
        if len(record) > len(header) and any(c.strip() for c in record[len(header) :]):
            result.errors.append(
                ServiceError(
                    where,
                    None,
                    f"la ligne compte {len(record)} valeurs pour {len(header)} colonnes",
                    file=file,
                )
            )
            continue
        raw: dict[str, Any] = {}
        for name, cell in zip(header, record, strict=False):
            value = cell.strip()
            if not name or value == "":
                continue
            raw[name] = _csv_list(value) if name in LIST_FIELDS else value
        rows.append((where, raw))
    return rows


def _csv_list(value: str) -> Any:
    """A list cell: a JSON array, a PostgreSQL array ``{a,b}``, or values split by , ; or |."""
    if value.startswith("["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if value.startswith("{") and value.endswith("}"):
        value = value[1:-1]
    for sep in ("|", ";", ","):
        if sep in value:
            return [v.strip().strip('"') for v in value.split(sep) if v.strip()]
    return [value.strip('"')]


def _parse_structures(data: bytes, filename: str, result: ParseResult) -> dict[str, str]:
    """id -> name of the structures file; its errors are reported with its file name."""
    rows = _rows(data, filename, result, file=filename)
    names: dict[str, str] = {}
    for where, raw in rows or []:
        result.structures_read += 1
        try:
            s = v1.Structure.model_validate(raw)
        except ValidationError as exc:
            result.errors.extend(_errors(where, raw, exc, file=filename))
            continue
        key = upsert_key(s.source, s.id)
        names[key] = names[s.id] = s.nom
    return names


def _parse_row(
    where: str,
    raw: dict[str, Any],
    cog: CogTable,
    by_department: Mapping[str, Collection[str]],
    structure_names: Mapping[str, str],
    result: ParseResult,
) -> ServiceRecord | None:
    ident = raw.get("id") if isinstance(raw.get("id"), str) else None
    try:
        s = v1.Service.model_validate(raw)
    except ValidationError as exc:
        result.errors.extend(_errors(where, raw, exc))
        return None
    errors: list[ServiceError] = []
    zone = tuple(s.zone_eligibilite or ())
    unknown = [c for c in zone if cog.kind(c) is None]
    if unknown:
        codes = ", ".join(f"« {c} »" for c in unknown[:5])
        errors.append(
            ServiceError(
                where,
                "zone_eligibilite",
                f"{'code inconnu' if len(unknown) < 2 else 'codes inconnus'} du Code officiel "
                f"géographique {codes} (millésime "
                f"{cog.millesime} : commune, département, EPCI, pays ou « france » attendu)",
                ident=ident,
            )
        )
    score: float | None = None
    computed = False
    if raw.get("score_qualite") not in (None, ""):
        try:
            score = float(raw["score_qualite"])
        except (TypeError, ValueError):
            score = -1.0
        if not 0.0 <= score <= 1.0:
            errors.append(
                ServiceError(where, "score_qualite", "nombre entre 0 et 1 attendu", ident=ident)
            )
    else:
        score, computed = quality_score(s), True
    if errors:
        result.errors.extend(errors)
        return None
    thematiques = tuple(sorted(t.value for t in s.thematiques or ()))
    routable = tuple(t for t in thematiques if t in THEMATIQUES)
    if not zone and s.code_insee and cog.kind(s.code_insee) == "commune":
        territories = territories_of([s.code_insee], cog, by_department)
    else:
        territories = territories_of(zone, cog, by_department)
    key = upsert_key(s.source, s.id)
    return ServiceRecord(
        key=key,
        source=s.source,
        id=s.id,
        structure_id=s.structure_id,
        structure_name=structure_names.get(s.structure_id),
        nom=s.nom,
        description=s.description,
        date_maj=s.date_maj,
        thematiques=thematiques,
        routable=routable,
        domain=principal_domain(routable),
        zone=zone,
        territories=territories,
        score_qualite=score,
        score_computed=computed,
        publics=tuple(sorted(p.value for p in s.publics or ())),
        publics_precisions=s.publics_precisions,
        conditions_acces=s.conditions_acces,
        frais=s.frais.value if s.frais else None,
        modes_accueil=tuple(sorted(m.value for m in s.modes_accueil or ())),
        modes_mobilisation=tuple(sorted(m.value for m in s.modes_mobilisation or ())),
        mobilisable_par=tuple(sorted(m.value for m in s.mobilisable_par or ())),
        mobilisation_precisions=s.mobilisation_precisions,
        courriel=str(s.courriel) if s.courriel else None,
        telephone=s.telephone,
        lien_mobilisation=str(s.lien_mobilisation) if s.lien_mobilisation else None,
        lien_source=str(s.lien_source) if s.lien_source else None,
        adresse=s.adresse,
        code_postal=s.code_postal,
        commune=s.commune,
        where=where,
    )


# --------------------------------------------------------------- French validation errors


def _shown(value: Any, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _errors(
    where: str, raw: Mapping[str, Any], exc: ValidationError, *, file: str | None = None
) -> list[ServiceError]:
    """One error per field of the row, its messages merged, in French."""
    ident = raw.get("id") if isinstance(raw.get("id"), str) else None
    merged: dict[str, list[str]] = {}
    for err in exc.errors():
        loc = err.get("loc", ())
        name = str(loc[0]) if loc else ""
        text = _french(name, err)
        texts = merged.setdefault(name, [])
        if text not in texts:
            texts.append(text)
    return [
        ServiceError(where, name or None, " ; ".join(texts), ident=ident, file=file)
        for name, texts in merged.items()
    ]


def _french(name: str, err: Mapping[str, Any]) -> str:
    kind = str(err.get("type", ""))
    value = err.get("input")
    ctx = err.get("ctx") or {}
    loc = err.get("loc", ())
    if name == "zone_eligibilite" and len(loc) > 1:
        return (
            f"code « {_shown(value)} » invalide (code commune à 5 caractères, département, "
            "EPCI à 9 chiffres, pays 99XXX ou « france » attendu)"
        )
    if kind == "missing":
        return "champ obligatoire manquant"
    if kind == "enum":
        if name == "thematiques":
            return f"thématique inconnue « {_shown(value)} » (référentiel data·inclusion v1)"
        what = FIELD_LABELS.get(name, "valeur")
        expected = str(ctx.get("expected", ""))
        hint = f" (attendu : {expected.replace(' or ', ' ou ')})" if len(expected) < 200 else ""
        return f"{what} inconnu·e « {_shown(value)} »{hint}"
    if kind == "value_error":
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        if name == "courriel":
            return f"adresse électronique invalide « {_shown(value)} »"
        msg = msg.replace("`", "« ", 1).replace("`", " »", 1).rstrip(".")
        return msg[:1].lower() + msg[1:] if msg[1:2].islower() else msg
    if kind in ("string_too_short", "too_short"):
        if isinstance(value, (list, set, tuple)):
            return "liste vide"
        return f"texte trop court (au moins {ctx.get('min_length')} caractères)"
    if kind in ("string_too_long", "too_long"):
        return f"texte trop long (au plus {ctx.get('max_length')} caractères)"
    if kind.startswith("date"):
        return f"date invalide « {_shown(value)} » (attendu : AAAA-MM-JJ)"
    if kind.startswith("url"):
        return f"adresse web invalide « {_shown(value)} »"
    if kind in ("float_parsing", "float_type", "int_parsing", "int_type", "int_from_float"):
        return f"nombre attendu (reçu « {_shown(value)} »)"
    if kind in ("greater_than_equal", "greater_than"):
        return f"nombre trop petit (reçu « {_shown(value)} »)"
    if kind in ("list_type", "set_type"):
        return "liste attendue"
    if kind == "string_type":
        return "texte attendu"
    if kind == "string_pattern_mismatch":
        return f"format invalide « {_shown(value)} »"
    return f"valeur invalide « {_shown(value)} »"

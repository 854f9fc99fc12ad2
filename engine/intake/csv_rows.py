"""Parsing of a chantier's CSV export of salarié·es and their freins (pure part of the import).

Why: chantiers keep their own reporting tools; the simplest bridge is the CSV file those tools
(or a spreadsheet) export. This module turns the bytes into typed, validated rows and a list
of errors that a CIP/ESP can fix in the spreadsheet: each error names the line *as the
spreadsheet shows it* (header = line 1), the column and the problem, in French. It never
touches the database: the engine upserts the rows (re-importing the same file is idempotent,
``SalarieRow.digest()`` tells whether a known person's row changed).

Columns are documented for users in ``docs/import-csv.md``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime

from engine.domain.labels import plural
from partners.taxonomy import LEGACY_SLUGS, UnknownThematique, canonical_slug

REQUIRED_COLUMNS: tuple[str, ...] = (
    "reference",
    "chantier",
    "programme",
    "date_entree",
    "situation_logement",
    "ressources",
    "taille_foyer",
    "freins",
)
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "date_sortie",
    "mois_rue",
    "enfants_mineurs",
    "rqth",
    "vulnerabilites",
    "oriente_par",
    "categorie_sortie",
)
IDENTITY_COLUMNS: tuple[str, ...] = ("nom", "prenom", "date_naissance", "telephone", "courriel")
ALL_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS + IDENTITY_COLUMNS

# French values in the file -> codes of matching.facts (HOUSING_SITUATIONS, VULNERABILITY_FLAGS)
HOUSING_VALUES: dict[str, str] = {
    "rue": "street",
    "hebergement_urgence": "emergency_shelter",
    "heberge_tiers": "hosted_third_party",
    "logement_insertion": "integration_housing",
    "loge": "housed",
}
VULNERABILITY_VALUES: dict[str, str] = {
    "violences": "violence",
    "grossesse": "pregnancy",
    "sortie_hospitalisation": "leaving_hospital",
}
PROGRAMME_VALUES: dict[str, str] = {"cvg": "cvg", "phc": "phc"}
# How the person came (codes of reporting.records.REFERRED_BY) and IAE exit categories.
REFERRED_BY_VALUES: dict[str, str] = {
    "siao_115": "siao_115",
    "siao": "siao_115",
    "115": "siao_115",
    "maraude": "maraude",
    "france_travail": "france_travail",
    "ccas": "ccas",
    "autre": "other",
}
EXIT_VALUES: dict[str, str] = {
    "emploi_durable": "emploi_durable",
    "emploi_transition": "emploi_transition",
    "sortie_positive": "sortie_positive",
    "autre": "autre",
}
YES = frozenset({"oui", "o", "1", "vrai", "x"})
NO = frozenset({"non", "n", "0", "faux", ""})

DELIMITERS = ";,"
MAX_REFERENCE_LENGTH = 64
_REFERENCE_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FR_RE = re.compile(r"^\d{1,2}/\d{1,2}/\d{4}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE_RE = re.compile(r"^\+?[0-9 .()-]{6,20}$")


@dataclass(frozen=True, slots=True)
class ImportError_:  # noqa: N801 - trailing underscore: do not shadow the builtin ImportError
    """One problem, located as the user sees it (line None: the whole file)."""

    line: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = "Fichier" if self.line is None else f"Ligne {self.line}"
        if self.column:
            where += f", colonne « {self.column} »"
        return f"{where} : {self.message}."


@dataclass(frozen=True, slots=True)
class Identity:
    """Identity fields: stored apart, readable only by roles that need them."""

    last_name: str = ""
    first_name: str = ""
    birth_date: date | None = None
    phone: str = ""
    email: str = ""


@dataclass(frozen=True, slots=True)
class SalarieRow:
    """One valid line of the file: a salarié·e, their situation and their freins."""

    line: int
    reference: str
    chantier: str
    programme: str  # "cvg" | "phc"
    entry_date: date
    exit_date: date | None
    housing: str  # a key of matching.facts.HOUSING_SITUATIONS
    street_months: int
    has_resources: bool
    household_size: int
    minor_children: int
    rqth: bool
    vulnerability_flags: frozenset[str]
    freins: tuple[str, ...]  # data·inclusion v1 slugs, file order, no duplicates
    identity: Identity | None = None
    referred_by: str | None = None  # None: not given (a value recorded on the page stays)
    exit_category: str | None = None

    def digest(self) -> str:
        """Stable hash of everything but the line number.

        Why: re-importing a file must be idempotent; the engine compares this digest with
        the stored one to skip unchanged people and update changed ones.
        """
        data = asdict(self)
        del data["line"]
        data["vulnerability_flags"] = sorted(self.vulnerability_flags)
        blob = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(slots=True)
class ImportResult:
    """Valid rows, errors and warnings of one parse; rows with an error are not in ``rows``."""

    rows: list[SalarieRow] = field(default_factory=list)
    errors: list[ImportError_] = field(default_factory=list)
    warnings: list[ImportError_] = field(default_factory=list)
    delimiter: str | None = None
    lines_read: int = 0
    existing_references: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.errors


# ----------------------------------------------------------------------------- entry points


def parse_salaries_csv(
    data: bytes,
    *,
    known_chantiers: Collection[str] | Mapping[str, Collection[str]],
    existing_references: set[str] | None = None,
) -> ImportResult:
    """Parse a salarié·es CSV export (UTF-8, « ; » or « , » separated).

    ``known_chantiers`` holds the chantier codes the importer may use; when it maps each
    code to the programmes the chantier carries ("cvg", "phc"), the programme is checked
    too. ``existing_references`` is informative only: known references are reported as
    updates, never as errors.
    """
    result = ImportResult()
    text = _decode(data, result)
    if text is None:
        return result
    delimiter = _detect_delimiter(text, result)
    if delimiter is None:
        return result
    result.delimiter = delimiter
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        result.errors.append(ImportError_(None, None, f"fichier CSV illisible ({exc})"))
        return result
    # Line numbers count records, as a spreadsheet shows them (a quoted multi-line cell is
    # one line); blank lines before the header are tolerated.
    header_index = next((i for i, r in enumerate(records) if any(c.strip() for c in r)), None)
    if header_index is None:
        result.errors.append(ImportError_(None, None, "ligne d'en-tête introuvable"))
        return result
    columns = _read_header(records[header_index], header_index + 1, result)
    if columns is None:
        return result
    chantiers = _chantier_index(known_chantiers)
    first_line_of: dict[str, int] = {}
    for line, record in enumerate(records[header_index + 1 :], start=header_index + 2):
        if not any(cell.strip() for cell in record):
            continue
        result.lines_read += 1
        row = _parse_record(line, record, columns, chantiers, result)
        if row is None:
            continue
        if row.reference in first_line_of:
            result.errors.append(
                ImportError_(
                    line,
                    "reference",
                    f"référence « {row.reference} » déjà présente ligne "
                    f"{first_line_of[row.reference]}",
                )
            )
            continue
        first_line_of[row.reference] = line
        result.rows.append(row)
    if result.lines_read == 0:
        result.errors.append(ImportError_(None, None, "le fichier ne contient aucune salarié·e"))
    if existing_references:
        result.existing_references = {
            r.reference for r in result.rows if r.reference in existing_references
        }
    return result


def format_report(result: ImportResult) -> str:
    """French multi-line report shown to the person who uploaded the file."""
    lines: list[str] = []
    n_err = len(result.errors)
    head = (
        f"Import des salarié·es : {plural(result.lines_read, 'ligne lue', 'lignes lues')}, "
        f"{plural(len(result.rows), 'valide')}"
    )
    if n_err:
        lines.append(f"{head}, {plural(n_err, 'erreur')} à corriger.")
    else:
        lines.append(f"{head}, aucune erreur.")
    if result.existing_references:
        n_known = len(result.existing_references)
        n_new = len(result.rows) - n_known
        lines.append(
            f"{plural(n_new, 'nouvelle salarié·e', 'nouvelles salarié·es')}, "
            f"{plural(n_known, 'déjà connue', 'déjà connues')} "
            "(mises à jour seulement si leur ligne a changé)."
        )
    lines.extend(str(e) for e in result.errors)
    if result.warnings:
        lines.append("Avertissements :")
        lines.extend(str(w) for w in result.warnings)
    return "\n".join(lines)


# ------------------------------------------------------------------------------ file level


def _decode(data: bytes, result: ImportResult) -> str | None:
    body = data.removeprefix(b"\xef\xbb\xbf")
    if not body.strip():
        result.errors.append(ImportError_(None, None, "le fichier est vide"))
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        result.errors.append(
            ImportError_(
                None,
                None,
                f"le fichier n'est pas encodé en UTF-8 (ligne {line}) ; dans votre tableur, "
                "enregistrez-le au format « CSV UTF-8 »",
            )
        )
        return None


def _detect_delimiter(text: str, result: ImportResult) -> str | None:
    header = text.lstrip("\r\n").splitlines()[0] if text.strip() else ""
    present = [d for d in DELIMITERS if d in header]
    if not present:
        result.errors.append(
            ImportError_(
                None,
                None,
                "séparateur de colonnes introuvable : une seule colonne détectée, "
                "séparez les colonnes par « ; » ou « , »",
            )
        )
        return None
    sample = "\n".join(text.splitlines()[:50])
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        sniffed = ""
    if sniffed in present:
        return sniffed
    return max(present, key=header.count)


def _normalise(value: str) -> str:
    """Lower-case, accents removed, spaces/hyphens/apostrophes as "_": "Hébergé tiers" -> …"""
    folded = unicodedata.normalize("NFKD", value.strip().lower())
    ascii_only = "".join(c for c in folded if not unicodedata.combining(c))
    return re.sub(r"[\s'’-]+", "_", ascii_only).strip("_")


# Small words users put in headers ("Date d'entrée", "Taille du foyer", "Mois à la rue").
_HEADER_STOP_WORDS = frozenset({"d", "de", "du", "des", "l", "la", "le", "a"})
_HEADER_ALIASES: dict[str, str] = {
    "ref": "reference",
    "email": "courriel",
    "e_mail": "courriel",
    "mail": "courriel",
    "tel": "telephone",
    "vulnerabilite": "vulnerabilites",
    "frein": "freins",
}


def _header_name(value: str) -> str:
    """Column name of a header cell: ``Date d'entrée`` and ``date_entree`` are the same."""
    words = [w for w in _normalise(value).split("_") if w and w not in _HEADER_STOP_WORDS]
    name = "_".join(words)
    return _HEADER_ALIASES.get(name, name)


def _read_header(header: list[str], line: int, result: ImportResult) -> dict[str, int] | None:
    columns: dict[str, int] = {}
    for i, raw in enumerate(header):
        name = _header_name(raw)
        if not name:
            continue
        if name in columns:
            result.errors.append(ImportError_(line, raw.strip(), "colonne présente deux fois"))
        elif name not in ALL_COLUMNS:
            result.warnings.append(ImportError_(line, raw.strip(), "colonne inconnue, ignorée"))
        columns.setdefault(name, i)
    for name in REQUIRED_COLUMNS:
        if name not in columns:
            result.errors.append(ImportError_(None, name, "colonne obligatoire absente"))
    return None if result.errors else columns


def _chantier_index(
    known: Collection[str] | Mapping[str, Collection[str]],
) -> dict[str, frozenset[str] | None]:
    if isinstance(known, Mapping):
        return {c.lower(): frozenset(p.lower() for p in progs) for c, progs in known.items()}
    return {c.lower(): None for c in known}


# ------------------------------------------------------------------------------ row level


class _CellError(ValueError):
    """A cell's value is invalid; the message is French and has no final period."""


def _parse_record(
    line: int,
    record: list[str],
    columns: dict[str, int],
    chantiers: dict[str, frozenset[str] | None],
    result: ImportResult,
) -> SalarieRow | None:
    width = max(columns.values()) + 1
    if len(record) > width and any(c.strip() for c in record[width:]):
        result.errors.append(
            ImportError_(
                line,
                None,
                f"la ligne compte {len(record)} valeurs pour {width} colonnes "
                "(un séparateur en trop dans une cellule ?)",
            )
        )
        return None
    errors: list[ImportError_] = []

    def cell(name: str) -> str:
        i = columns.get(name)
        return record[i].strip() if i is not None and i < len(record) else ""

    def get(name: str, parse: Callable[[str], object]) -> object:
        try:
            return parse(cell(name))
        except _CellError as exc:
            errors.append(ImportError_(line, name, str(exc)))
            return None

    reference = get("reference", _reference)
    chantier = get("chantier", lambda v: _chantier(v, chantiers))
    programme = get("programme", _programme)
    entry = get("date_entree", _required(_date))
    exit_ = get("date_sortie", _optional(_date))
    housing = get("situation_logement", _housing)
    street = get("mois_rue", _optional(_integer(0, 720), default=0))
    resources = get("ressources", _required(_yes_no))
    size = get("taille_foyer", _required(_integer(1, 20)))
    children = get("enfants_mineurs", _optional(_integer(0, 19), default=0))
    rqth = get("rqth", _yes_no)
    flags = get("vulnerabilites", _vulnerabilities)
    referred_by = get("oriente_par", _choice("orienté par", REFERRED_BY_VALUES))
    exit_category = get("categorie_sortie", _choice("catégorie de sortie", EXIT_VALUES))
    freins = get("freins", lambda v: _freins(v, line, result))
    identity = _identity(line, cell, errors)

    errors += _cross_checks(
        line,
        chantiers,
        entry=entry,
        exit_=exit_,
        size=size,
        children=children,
        chantier=chantier,
        programme=programme,
        identity=identity,
    )
    if exit_category is not None and not isinstance(exit_, date):
        errors.append(
            ImportError_(
                line, "categorie_sortie", "une catégorie de sortie demande une date_sortie"
            )
        )
    if errors:
        result.errors.extend(errors)
        return None
    assert isinstance(reference, str) and isinstance(chantier, str)
    assert isinstance(programme, str) and isinstance(entry, date) and isinstance(housing, str)
    assert isinstance(street, int) and isinstance(size, int) and isinstance(children, int)
    assert isinstance(flags, frozenset) and isinstance(freins, tuple)
    return SalarieRow(
        line=line,
        reference=reference,
        chantier=chantier,
        programme=programme,
        entry_date=entry,
        exit_date=exit_ if isinstance(exit_, date) else None,
        housing=housing,
        street_months=street,
        has_resources=bool(resources),
        household_size=size,
        minor_children=children,
        rqth=bool(rqth),
        vulnerability_flags=flags,
        freins=freins,
        identity=identity,
        referred_by=referred_by if isinstance(referred_by, str) else None,
        exit_category=exit_category if isinstance(exit_category, str) else None,
    )


def _cross_checks(
    line: int,
    chantiers: dict[str, frozenset[str] | None],
    *,
    entry: object,
    exit_: object,
    size: object,
    children: object,
    chantier: object,
    programme: object,
    identity: Identity | None,
) -> list[ImportError_]:
    """The checks that read several cells of the row (each cell already parsed or None)."""
    errors: list[ImportError_] = []
    if isinstance(entry, date) and isinstance(exit_, date) and exit_ < entry:
        errors.append(
            ImportError_(
                line,
                "date_sortie",
                f"la date de sortie ({exit_:%d/%m/%Y}) précède la date d'entrée ({entry:%d/%m/%Y})",
            )
        )
    if isinstance(size, int) and isinstance(children, int) and children >= size:
        errors.append(
            ImportError_(
                line,
                "enfants_mineurs",
                f"{plural(children, 'enfant mineur', 'enfants mineurs')} pour un foyer de "
                f"{plural(size, 'personne')} "
                "(le foyer compte aussi la ou le salarié·e)",
            )
        )
    if isinstance(chantier, str) and isinstance(programme, str):
        programmes = chantiers.get(chantier)
        if programmes is not None and programme not in programmes:
            errors.append(
                ImportError_(
                    line,
                    "programme",
                    f"le chantier « {chantier} » ne porte pas le programme {programme.upper()}",
                )
            )
    if (
        identity is not None
        and identity.birth_date is not None
        and isinstance(entry, date)
        and identity.birth_date >= entry
    ):
        errors.append(
            ImportError_(line, "date_naissance", "la date de naissance suit la date d'entrée")
        )
    return errors


def _required(parse: Callable[[str], object]) -> Callable[[str], object]:
    def wrapped(value: str) -> object:
        if not value:
            raise _CellError("valeur obligatoire manquante")
        return parse(value)

    return wrapped


def _optional(parse: Callable[[str], object], default: object = None) -> Callable[[str], object]:
    def wrapped(value: str) -> object:
        return default if not value else parse(value)

    return wrapped


def _reference(value: str) -> str:
    if not value:
        raise _CellError("valeur obligatoire manquante")
    if len(value) > MAX_REFERENCE_LENGTH or not _REFERENCE_RE.match(value):
        raise _CellError(
            f"référence « {value[:MAX_REFERENCE_LENGTH]} » invalide (lettres sans accent, "
            f"chiffres, « - », « _ » ou « . », {MAX_REFERENCE_LENGTH} caractères au plus)"
        )
    return value


def _chantier(value: str, chantiers: dict[str, frozenset[str] | None]) -> str:
    if not value:
        raise _CellError("valeur obligatoire manquante")
    code = value.lower()
    if code not in chantiers:
        raise _CellError(f"chantier « {value} » inconnu")
    return code


def _programme(value: str) -> str:
    code = PROGRAMME_VALUES.get(value.lower())
    if code is None:
        shown = f"« {value} »" if value else "vide"
        raise _CellError(f"programme {shown} invalide (attendu : CVG ou PHC)")
    return code


def _date(value: str) -> date:
    try:
        if _ISO_RE.match(value):
            parsed = date.fromisoformat(value)
        elif _FR_RE.match(value):
            parsed = datetime.strptime(value, "%d/%m/%Y").date()
        else:
            raise ValueError(value)
    except ValueError:
        raise _CellError(
            f"date « {value} » invalide (formats acceptés : JJ/MM/AAAA ou AAAA-MM-JJ)"
        ) from None
    if not 1900 <= parsed.year <= 2100:
        raise _CellError(f"date « {value} » improbable")
    return parsed


def _housing(value: str) -> str:
    code = HOUSING_VALUES.get(_normalise(value))
    if code is None:
        shown = f"« {value} »" if value else "vide"
        raise _CellError(
            f"situation de logement {shown} invalide (attendue : {', '.join(HOUSING_VALUES)})"
        )
    return code


def _choice(what: str, values: Mapping[str, str]) -> Callable[[str], str | None]:
    """An optional coded cell: empty is None, anything else must be one of ``values``."""

    def parse(value: str) -> str | None:
        if not value:
            return None
        code = values.get(_normalise(value))
        if code is None:
            raise _CellError(f"{what} « {value} » invalide (attendu : {', '.join(values)})")
        return code

    return parse


def _integer(low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        if not re.fullmatch(r"\d+", value) or not low <= int(value) <= high:
            raise _CellError(f"« {value} » n'est pas un nombre entier entre {low} et {high}")
        return int(value)

    return parse


def _yes_no(value: str) -> bool:
    v = value.lower()
    if v in YES:
        return True
    if v in NO:
        return False
    raise _CellError(f"« {value} » invalide (attendu : oui ou non)")


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split("|") if part.strip()]


def _vulnerabilities(value: str) -> frozenset[str]:
    flags: set[str] = set()
    for part in _split(value):
        code = VULNERABILITY_VALUES.get(_normalise(part))
        if code is None:
            raise _CellError(
                f"vulnérabilité « {part} » inconnue (attendues : {', '.join(VULNERABILITY_VALUES)})"
            )
        flags.add(code)
    return frozenset(flags)


def _freins(value: str, line: int, result: ImportResult) -> tuple[str, ...]:
    slugs: list[str] = []
    unknown: list[str] = []
    for part in _split(value):
        try:
            slug = canonical_slug(part)
        except UnknownThematique:
            unknown.append(part)
            continue
        if part.lower() in LEGACY_SLUGS:
            result.warnings.append(
                ImportError_(
                    line,
                    "freins",
                    f"thématique « {part} » remplacée par « {slug} » (référentiel v1)",
                )
            )
        if slug not in slugs:
            slugs.append(slug)
    if unknown:
        names = ", ".join(f"« {u} »" for u in unknown)
        raise _CellError(
            f"{'thématique inconnue' if len(unknown) < 2 else 'thématiques inconnues'} {names} "
            "(référentiel data·inclusion v1, voir la "
            "documentation)"
        )
    return tuple(slugs)


def _identity(line: int, cell: Callable[[str], str], errors: list[ImportError_]) -> Identity | None:
    """Identity cells; their values are never echoed in messages (the report may be shared)."""
    values = {name: cell(name) for name in IDENTITY_COLUMNS}
    if not any(values.values()):
        return None
    birth: date | None = None
    if values["date_naissance"]:
        try:
            birth = _date(values["date_naissance"])
        except _CellError:
            errors.append(
                ImportError_(
                    line,
                    "date_naissance",
                    "date invalide (formats acceptés : JJ/MM/AAAA ou AAAA-MM-JJ)",
                )
            )
    if values["courriel"] and not _EMAIL_RE.match(values["courriel"]):
        errors.append(ImportError_(line, "courriel", "adresse électronique invalide"))
    if values["telephone"] and not _PHONE_RE.match(values["telephone"]):
        errors.append(ImportError_(line, "telephone", "numéro de téléphone invalide"))
    return Identity(
        last_name=values["nom"],
        first_name=values["prenom"],
        birth_date=birth,
        phone=values["telephone"],
        email=values["courriel"],
    )

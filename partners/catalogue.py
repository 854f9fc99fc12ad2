"""The partner directory: who helps with which frein, where, for whom, and how many slots.

Why: partners, their offers, eligibility rules and counted capacities are *data* the
national team edits (``partners/data/catalogue.json``), not code. This module gives that data
a strict schema and validates it as a whole when it is loaded, so a typo in a rule, a
thématique or a territory code stops the load with a French message naming the partner, the
offer and the field — rather than silently routing nobody to a partner.

Pure: standard library and pydantic only. The engine seeds its tables from a
:class:`Catalogue`; ``matching`` reads offers, rules and pools from it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from partners.eligibility_rules import Rule
from partners.taxonomy import DOMAINS, THEMATIQUES, covers

NATIONAL = "national"

UNIT_KINDS: dict[str, str] = {
    "logement": "logement",
    "mesure": "mesure d'accompagnement",
    "bilan": "bilan de santé",
    "place": "place d'hébergement",
    "poste": "poste",
}

PROGRAMMES: tuple[str, ...] = ("cvg", "phc")


class CatalogueError(ValueError):
    """The catalogue is invalid; ``messages`` lists every problem found, in French."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PoolSpec(_Model):
    """A counted capacity of one offer over a territory scope and a period."""

    territories: list[str] | Literal["national"]
    capacity: int
    per: Literal["year"] = "year"
    unit_kind: str
    # Given through a commission (CALEOL): each unit gets a shortlist rang 1..shortlist.
    commission: bool = False
    shortlist: int = Field(3, ge=1, le=20)
    assumed: bool = False
    note: str | None = None

    @field_validator("capacity")
    @classmethod
    def _non_negative(cls, v: int) -> int:
        if v < 0:
            raise ValueError(f"la capacité doit être positive ou nulle (reçu {v})")
        return v

    @field_validator("territories")
    @classmethod
    def _non_empty(cls, v: list[str] | str) -> list[str] | str:
        if isinstance(v, list) and not v:
            raise ValueError("la liste des territoires est vide")
        return v

    @field_validator("unit_kind")
    @classmethod
    def _known_unit(cls, v: str) -> str:
        if v not in UNIT_KINDS:
            raise ValueError(f"unité inconnue « {v} » (attendues : {', '.join(UNIT_KINDS)})")
        return v

    def covers_territory(self, territory: str | None) -> bool:
        if self.territories == NATIONAL:
            return True
        return territory is not None and territory in self.territories


class Offer(_Model):
    """One kind of help a partner provides (e.g. CDC Habitat's reserved social housing)."""

    code: str
    name: str
    thematiques: list[str]
    slot_based: bool
    accepts_direct: bool
    rules: list[Rule] = []
    unit_kind: str | None = None
    pools: list[PoolSpec] = []
    excludes: list[str] = []  # codes of sibling offers a person cannot hold at the same time
    assumed: bool = False
    note: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _pools_inherit_unit(cls, data: Any) -> Any:
        # A pool counts the offer's unit unless it says otherwise: saves repetition in JSON.
        if isinstance(data, dict) and isinstance(data.get("pools"), list):
            unit = data.get("unit_kind")
            data = dict(data)
            data["pools"] = [
                {"unit_kind": unit, **p} if isinstance(p, dict) and unit is not None else p
                for p in data["pools"]
            ]
        return data

    @field_validator("code")
    @classmethod
    def _code_slug(cls, v: str) -> str:
        return _check_code(v)

    @field_validator("thematiques")
    @classmethod
    def _known_thematiques(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("au moins une thématique est attendue")
        unknown = [s for s in v if s not in THEMATIQUES]
        if unknown:
            raise ValueError(
                "thématique inconnue "
                + ", ".join(f"« {s} »" for s in unknown)
                + " (référentiel data·inclusion v1)"
            )
        return v

    @field_validator("unit_kind")
    @classmethod
    def _known_unit(cls, v: str | None) -> str | None:
        if v is not None and v not in UNIT_KINDS:
            raise ValueError(f"unité inconnue « {v} » (attendues : {', '.join(UNIT_KINDS)})")
        return v

    @model_validator(mode="after")
    def _slots_consistent(self) -> Offer:
        if self.pools and not self.slot_based:
            raise ValueError(
                "une offre sans places comptées (slot_based false) n'a pas de contingent"
            )
        if self.slot_based and self.unit_kind is None:
            raise ValueError("une offre à places comptées doit préciser son unité (unit_kind)")
        if self.code in self.excludes:
            raise ValueError("une offre ne peut pas s'exclure elle-même")
        seen: set[str] = set()
        for i, pool in enumerate(self.pools, start=1):
            scope = [NATIONAL] if pool.territories == NATIONAL else list(pool.territories)
            if NATIONAL in seen or (seen and pool.territories == NATIONAL):
                raise ValueError(
                    f"contingent {i} : un contingent national ne se combine à aucun autre"
                )
            twice = sorted(seen.intersection(scope))
            if twice:
                raise ValueError(
                    f"contingent {i} : territoire(s) {', '.join(twice)} déjà couvert(s) "
                    "par un autre contingent de l'offre"
                )
            seen.update(scope)
            if pool.unit_kind != self.unit_kind:
                raise ValueError(
                    f"contingent {i} : unité « {pool.unit_kind} » différente de celle de "
                    f"l'offre « {self.unit_kind} »"
                )
        return self

    def covers_thematique(self, slug: str) -> bool:
        return any(covers(p, slug) for p in self.thematiques)


class Partner(_Model):
    """An organisation the chargé·es refer people to."""

    code: str
    name: str
    domain: str
    national: bool  # partnership signed with Convergence France (vs a local partner)
    coverage: list[str] | Literal["national"]
    contact_email: str
    offers: list[Offer]
    assumed: bool = False  # not in the 2024 report: plausible data for demos and tests
    note: str | None = None

    @field_validator("code")
    @classmethod
    def _code_slug(cls, v: str) -> str:
        return _check_code(v)

    @field_validator("domain")
    @classmethod
    def _known_domain(cls, v: str) -> str:
        if v not in DOMAINS:
            raise ValueError(f"domaine inconnu « {v} » (attendus : {', '.join(DOMAINS)})")
        return v

    @field_validator("contact_email")
    @classmethod
    def _fake_email(cls, v: str) -> str:
        # Real addresses never go in the shipped catalogue: demos must not email anyone.
        local, at, host = v.partition("@")
        if not local or not at or host != "example.org":
            raise ValueError(f"adresse de contact « {v} » invalide (attendu : …@example.org)")
        return v

    @field_validator("offers")
    @classmethod
    def _some_offer(cls, v: list[Offer]) -> list[Offer]:
        if not v:
            raise ValueError("au moins une offre est attendue")
        return v

    def covers_territory(self, territory: str | None) -> bool:
        """Whether the partner works for people of this territory (None: hors territoire)."""
        if self.coverage == NATIONAL:
            return True
        return territory is not None and territory in self.coverage

    def offer(self, code: str) -> Offer:
        for o in self.offers:
            if o.code == code:
                return o
        raise KeyError(code)


@dataclass(frozen=True, slots=True)
class CoveredOffer:
    """An offer together with the partner that provides it."""

    partner: Partner
    offer: Offer


@dataclass(frozen=True, slots=True)
class FlatPool:
    """A flattened slot pool, keyed stably so the engine can upsert it across reloads."""

    key: str  # "<partner>/<offer>/<territories joined by '+'>" or ".../national"
    partner_code: str
    offer_code: str
    territories: tuple[str, ...] | None  # None: national
    capacity: int
    per: str
    unit_kind: str
    assumed: bool

    def covers_territory(self, territory: str | None) -> bool:
        return self.territories is None or (territory is not None and territory in self.territories)


class Catalogue(_Model):
    """The whole directory, as loaded from ``catalogue.json``."""

    version: int = 1
    about: str | None = None
    partners: list[Partner]

    def partner(self, code: str) -> Partner:
        for p in self.partners:
            if p.code == code:
                return p
        raise KeyError(code)

    def offers_covering(self, territory: str | None) -> list[CoveredOffer]:
        """Offers open to people of ``territory`` (None: a chantier outside the territories).

        Why: routing proposes partners from this list; a PHC chantier "hors territoire" only
        sees partners with national coverage.
        """
        return [
            CoveredOffer(p, o)
            for p in self.partners
            if p.covers_territory(territory)
            for o in p.offers
        ]

    def offers_for(self, thematique: str, territory: str | None) -> list[CoveredOffer]:
        """Offers covering both a frein's thématique and the person's territory."""
        return [c for c in self.offers_covering(territory) if c.offer.covers_thematique(thematique)]

    def pools(self) -> list[FlatPool]:
        """Every counted capacity, flattened: one row per (partner, offer, territory scope)."""
        out: list[FlatPool] = []
        for p in self.partners:
            for o in p.offers:
                for spec in o.pools:
                    terr = None if spec.territories == NATIONAL else tuple(sorted(spec.territories))
                    scope = NATIONAL if terr is None else "+".join(terr)
                    out.append(
                        FlatPool(
                            key=f"{p.code}/{o.code}/{scope}",
                            partner_code=p.code,
                            offer_code=o.code,
                            territories=terr,
                            capacity=spec.capacity,
                            per=spec.per,
                            unit_kind=spec.unit_kind,
                            assumed=spec.assumed,
                        )
                    )
        return out

    def pool_for(
        self, partner_code: str, offer_code: str, territory: str | None
    ) -> FlatPool | None:
        """The pool that serves ``territory`` for an offer, if any (pools never overlap)."""
        for pool in self.pools():
            if (
                pool.partner_code == partner_code
                and pool.offer_code == offer_code
                and pool.covers_territory(territory)
            ):
                return pool
        return None


def _check_code(v: str) -> str:
    ok = v and all(c.isascii() and (c.islower() or c.isdigit() or c == "-") for c in v)
    if not ok:
        raise ValueError(f"code « {v} » invalide (minuscules, chiffres et tirets uniquement)")
    return v


# --------------------------------------------------------------------------- loading


def default_catalogue_text() -> str:
    """The catalogue shipped with the package (``partners/data/catalogue.json``)."""
    return resources.files("partners").joinpath("data/catalogue.json").read_text(encoding="utf-8")


def load_catalogue(path: Path | None = None, *, territories: set[str] | None = None) -> Catalogue:
    """Load and validate a catalogue file (the shipped one when ``path`` is None).

    Why: one entry point that refuses a bad catalogue as a whole, listing every problem;
    ``territories`` (the known territory codes) enables the coverage checks.
    """
    if path is None:
        text, source = default_catalogue_text(), "catalogue.json"
    else:
        source = path.name
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogueError([f"{source} : lecture impossible ({exc})"]) from exc
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogueError(
            [f"{source} : JSON invalide ligne {exc.lineno}, colonne {exc.colno} ({exc.msg})"]
        ) from exc
    return parse_catalogue(raw, source=source, territories=territories)


def parse_catalogue(
    raw: Any, *, source: str = "catalogue.json", territories: Collection[str] | None = None
) -> Catalogue:
    """Validate already-decoded catalogue data (see :func:`load_catalogue`)."""
    try:
        cat = Catalogue.model_validate(raw)
    except ValidationError as exc:
        # A union field (list of territories or "national") fails once per branch: merge
        # the messages of one location into one line.
        merged: dict[str, list[str]] = {}
        for e in exc.errors():
            texts = merged.setdefault(_where(raw, e["loc"]), [])
            if (text := _french(e)) not in texts:
                texts.append(text)
        raise CatalogueError(
            [f"{source} : {where}{', ou '.join(texts)}" for where, texts in merged.items()]
        ) from exc
    problems = [f"{source} : {p}" for p in _cross_checks(cat, territories)]
    if problems:
        raise CatalogueError(problems)
    return cat


def _cross_checks(cat: Catalogue, territories: Collection[str] | None) -> Iterable[str]:
    """Checks that span several objects: uniqueness, references, territory codes."""
    seen_partners: set[str] = set()
    for p in cat.partners:
        where_p = f"partenaire « {p.code} »"
        if p.code in seen_partners:
            yield f"{where_p} : code de partenaire en double"
        seen_partners.add(p.code)
        if territories is not None and p.coverage != NATIONAL:
            for t in p.coverage:
                if t not in territories:
                    yield f"{where_p}, champ « coverage » : territoire inconnu « {t} »"
        offer_codes = [o.code for o in p.offers]
        seen_offers: set[str] = set()
        for o in p.offers:
            where_o = f"{where_p}, offre « {o.code} »"
            if o.code in seen_offers:
                yield f"{where_o} : code d'offre en double"
            seen_offers.add(o.code)
            for x in o.excludes:
                if x not in offer_codes:
                    yield (
                        f"{where_o}, champ « excludes » : offre « {x} » inconnue chez ce partenaire"
                    )
            yield from _rule_value_checks(where_o, o.rules, territories)
            for i, pool in enumerate(o.pools, start=1):
                yield from _pool_checks(f"{where_o}, contingent {i}", pool, p, territories)


def _rule_value_checks(
    where: str, rules: list[Rule], territories: Collection[str] | None
) -> Iterable[str]:
    for i, r in enumerate(rules, start=1):
        values = r.value if isinstance(r.value, list | tuple) else [r.value]
        if r.field == "programme":
            for v in values:
                if v not in PROGRAMMES:
                    yield f"{where}, règle {i} : programme inconnu « {v} » (attendus : cvg, phc)"
        if r.field == "territory" and territories is not None:
            for v in values:
                if v not in territories:
                    yield f"{where}, règle {i} : territoire inconnu « {v} »"


def _pool_checks(
    where: str, pool: PoolSpec, partner: Partner, territories: Collection[str] | None
) -> Iterable[str]:
    if pool.territories == NATIONAL:
        if partner.coverage != NATIONAL:
            yield f"{where} : contingent national pour un partenaire à couverture locale"
        return
    for t in pool.territories:
        if territories is not None and t not in territories:
            yield f"{where}, champ « territories » : territoire inconnu « {t} »"
        elif not partner.covers_territory(t):
            yield f"{where}, champ « territories » : « {t} » hors de la couverture du partenaire"


# ------------------------------------------------------------- French error locations

_ERROR_TYPES: dict[str, str] = {
    "missing": "champ obligatoire manquant",
    "extra_forbidden": "champ inconnu",
    "int_type": "nombre entier attendu",
    "int_parsing": "nombre entier attendu",
    "int_from_float": "nombre entier attendu",
    "bool_type": "booléen attendu (true ou false)",
    "bool_parsing": "booléen attendu (true ou false)",
    "string_type": "texte attendu",
    "list_type": "liste attendue",
    "dict_type": "objet attendu",
    "model_type": "objet attendu",
}


def _french(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "value_error":
        msg = str(err.get("msg", ""))
        return msg.removeprefix("Value error, ")
    if kind == "literal_error":
        expected = str(err.get("ctx", {}).get("expected", "")).replace(" or ", " ou ")
        return f"valeur non autorisée « {err.get('input')} » (attendu : {expected})"
    return _ERROR_TYPES.get(kind, str(err.get("msg", "valeur invalide")))


def _where(raw: Any, loc: tuple[Any, ...]) -> str:
    """Turn a pydantic location into "partenaire « x », offre « y », règle 2, champ « z » : "."""
    parts: list[str] = []
    node = raw
    i = 0
    labels = {"partners": "partenaire", "offers": "offre"}
    numbered = {"rules": "règle", "pools": "contingent"}
    while i < len(loc):
        key = loc[i]
        nxt = loc[i + 1] if i + 1 < len(loc) else None
        child = _get(node, key)
        if key in labels and isinstance(nxt, int):
            item = _get(child, nxt)
            code = item.get("code") if isinstance(item, dict) else None
            parts.append(f"{labels[key]} « {code} »" if code else f"{labels[key]} n° {nxt + 1}")
            node, i = item, i + 2
        elif key in numbered and isinstance(nxt, int):
            parts.append(f"{numbered[key]} {nxt + 1}")
            node, i = _get(child, nxt), i + 2
        elif isinstance(key, str) and not key.startswith(("function-", "list[", "literal[")):
            parts.append(f"champ « {key} »")
            node, i = child, i + 1
        else:
            node, i = child, i + 1
    # pydantic appends union-branch names to locations: keep only the first field name
    fields = [p for p in parts if p.startswith("champ")]
    if len(fields) > 1:
        parts = [p for p in parts if not p.startswith("champ")] + fields[:1]
    return (", ".join(parts) + " : ") if parts else ""


def _get(node: Any, key: Any) -> Any:
    if isinstance(node, dict):
        return node.get(key)
    if isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
        return node[key]
    return None

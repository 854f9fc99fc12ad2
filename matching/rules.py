"""Routing rules as data: grid weights, caseload caps, routing exceptions, suggestion count.

Why: these numbers and exceptions are policy, decided by the national team, not code.
They live in a TOML file (`matching/data/rules.toml` by default) validated on load with
pydantic; any mistake stops the load with a French message naming the key and the
problem ("rules.toml : grille.a_la_rue doit être un entier positif"), so a typo never
silently changes who gets help first. Keys of the file are French (the national team
edits it); attribute names are English (developers read them).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo

from matching.grid import GridWeights, default_weights
from partners.taxonomy import (
    DOMAINS,
    OFFICER_DOMAINS,
    PREFIX_DOMAINS,
    THEMATIQUES,
    UnknownThematique,
)
from partners.taxonomy import domain_of as taxonomy_domain_of

Positive = Annotated[int, Field(gt=0, strict=True)]


class RulesError(ValueError):
    """The rules file cannot be used; the message (French) names every bad key."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Caps(_Section):
    """Default caseload caps (open referrals) when a user's account sets none."""

    officer: Positive = Field(120, alias="charge_partenariats")
    by_domain: dict[str, Positive] = Field(default_factory=dict, alias="par_domaine")

    @field_validator("by_domain")
    @classmethod
    def _officer_domains(cls, value: dict[str, int]) -> dict[str, int]:
        for domain in value:
            if domain not in OFFICER_DOMAINS:
                raise ValueError(
                    f"domaine inconnu « {domain} » (attendus : {', '.join(OFFICER_DOMAINS)})"
                )
        return value


def _known_slug_or_prefix(slug: str) -> bool:
    return slug in THEMATIQUES or slug in PREFIX_DOMAINS


class Routing(_Section):
    """Routing exceptions and presentation choices."""

    suggestions: Positive = 3
    at_cap: Literal["moins_charge", "coordination"] = Field("moins_charge", alias="au_plafond")
    domain_overrides: dict[str, str] = Field(default_factory=dict, alias="domaines")
    direct_partners: dict[str, str] = Field(default_factory=dict, alias="directs")

    @field_validator("domain_overrides")
    @classmethod
    def _domains(cls, value: dict[str, str]) -> dict[str, str]:
        for slug, domain in value.items():
            if not _known_slug_or_prefix(slug):
                raise ValueError(f"thématique inconnue « {slug} »")
            if domain not in DOMAINS:
                raise ValueError(
                    f"« {slug} » : domaine inconnu « {domain} » (attendus : {', '.join(DOMAINS)})"
                )
        return value

    @field_validator("direct_partners")
    @classmethod
    def _directs(cls, value: dict[str, str]) -> dict[str, str]:
        for slug, partner in value.items():
            if not _known_slug_or_prefix(slug):
                raise ValueError(f"thématique inconnue « {slug} »")
            if not partner.strip():
                raise ValueError(f"« {slug} » : le nom du partenaire est vide")
        return value


class RoutingRules(_Section):
    """Everything the intake needs besides the network itself."""

    grid: GridWeights = Field(default_factory=default_weights, alias="grille")
    caps: Caps = Field(default_factory=lambda: Caps.model_validate({}), alias="plafonds")
    routing: Routing = Field(default_factory=lambda: Routing.model_validate({}), alias="routage")

    def cap_for(self, domain: str) -> int:
        """Default cap of a chargé·e of `domain` (the engine uses it when the account has none)."""
        return self.caps.by_domain.get(domain, self.caps.officer)

    def domain_override(self, slug: str) -> str | None:
        """Domain forced by the rules for this thématique (exact slug first, then prefix)."""
        return _lookup(self.routing.domain_overrides, slug)

    def domain_of(self, slug: str) -> str:
        """The one decision of a frein's domain: the rules' override, else the taxonomy's,
        else "transverse" for a thématique outside it. Import, routing, scope and the case
        page all read the domain this returns (stored on the frein and its referrals)."""
        override = self.domain_override(slug)
        if override:
            return override
        try:
            return taxonomy_domain_of(slug)
        except UnknownThematique:
            return "transverse"

    def direct_partner(self, slug: str) -> str | None:
        """Partner name this thématique is sent to directly, if the rules name one."""
        return _lookup(self.routing.direct_partners, slug)


def _lookup(table: Mapping[str, str], slug: str) -> str | None:
    found = table.get(slug)
    if found is None:
        found = table.get(slug.split("--", 1)[0])
    return found


DEFAULT_SOURCE = "rules.toml"


def load_rules(path: Path | None = None) -> RoutingRules:
    """Load and validate the rules file (the packaged default when `path` is None)."""
    if path is None:
        data = resources.files("matching").joinpath("data/rules.toml").read_text("utf-8")
        return parse_rules(data, source=DEFAULT_SOURCE)
    try:
        data = path.read_text("utf-8")
    except FileNotFoundError as exc:
        raise RulesError(f"{path.name} : fichier introuvable ({path})") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"{path.name} : fichier illisible ({path})") from exc
    return parse_rules(data, source=path.name)


_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")


def parse_rules(text: str, *, source: str = DEFAULT_SOURCE) -> RoutingRules:
    """Validate rules given as TOML text; `source` names the file in error messages."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = _TOML_POSITION.search(str(exc))
        position = f" à la ligne {where[1]}, colonne {where[2]}" if where else ""
        raise RulesError(f"{source} : syntaxe TOML invalide{position}") from exc
    try:
        return RoutingRules.model_validate(raw)
    except ValidationError as exc:
        problems = tuple(f"{source} : {_french(error)}" for error in exc.errors())
        raise RulesError("\n".join(problems), problems) from exc


def _field_info(loc: tuple[Any, ...]) -> FieldInfo | None:
    """FieldInfo at a TOML key path, walking the models by alias."""
    model: Any = RoutingRules
    info: FieldInfo | None = None
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        info = next((f for name, f in model.model_fields.items() if part in (f.alias, name)), None)
        if info is None:
            return None
        model = info.annotation
    return info


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    info = _field_info(loc) if loc else None
    model: Any = info.annotation if info is not None else RoutingRules
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [f.alias or name for name, f in model.model_fields.items()]
    return []


def _int_expectation(loc: tuple[Any, ...]) -> str:
    info = _field_info(loc)
    strict = info is not None and any(getattr(m, "gt", None) == 0 for m in info.metadata)
    return "un entier strictement positif" if strict else "un entier positif"


def _shown(value: object) -> str:
    return f"« {value} »" if isinstance(value, str) else repr(value)


def _french(error: Mapping[str, Any]) -> str:
    """One pydantic error as a French sentence naming the key."""
    loc = tuple(error["loc"])
    key = ".".join(str(part) for part in loc) or "(racine)"
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        known = ", ".join(_known_keys(loc[:-1]))
        return f"{key} : clé inconnue (clés possibles : {known})"
    if kind == "greater_than":
        return f"{key} doit être un entier strictement positif (valeur lue : {_shown(value)})"
    if kind == "greater_than_equal":
        return f"{key} doit être un entier positif (valeur lue : {_shown(value)})"
    if kind.startswith("int_"):
        return f"{key} doit être {_int_expectation(loc)} (valeur lue : {_shown(value)})"
    if kind == "literal_error":
        info = _field_info(loc)
        allowed = " ou ".join(f"« {v} »" for v in get_args(info.annotation)) if info else ""
        return f"{key} doit valoir {allowed} (valeur lue : {_shown(value)})"
    if kind in ("string_type", "string_too_short"):
        return f"{key} doit être un texte (valeur lue : {_shown(value)})"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"{key} doit être une table TOML ([{key}])"
    if kind == "value_error":
        return f"{key} : {ctx.get('error', error.get('msg', ''))}"
    if kind == "missing":
        return f"{key} est obligatoire"
    return f"{key} : valeur invalide ({_shown(value)})"

"""Eligibility rules as data.

Why: offers publish who they are for (household size, resources, programme, housing
situation...). Rules are plain data validated on load, so the national team can edit them
without code, and `matching.eligibility` evaluates them and names the rule that rejected a
person. Field names are those of `matching.facts.PersonFacts`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

RULE_FIELDS: dict[str, str] = {
    "programme": "programme (cvg ou phc)",
    "territory": "territoire",
    "housing": "situation de logement",
    "street_months": "mois à la rue",
    "has_resources": "ressources",
    "household_size": "taille du foyer",
    "minor_children": "enfants mineurs",
    "rqth": "RQTH",
    "vulnerability": "vulnérabilité signalée",
    "health_urgency": "urgence santé",
    "age": "âge",
}

Op = Literal["eq", "ne", "in", "not_in", "gte", "lte", "gt", "lt", "is_true", "is_false"]


class Rule(BaseModel):
    """One condition a person must meet, e.g. household_size lte 4."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    op: Op
    value: Any = None
    label: str  # French sentence shown when the rule rejects someone

    @field_validator("field")
    @classmethod
    def _known_field(cls, v: str) -> str:
        if v not in RULE_FIELDS:
            raise ValueError(
                f"champ de règle inconnu « {v} » (attendus : {', '.join(RULE_FIELDS)})"
            )
        return v

    @model_validator(mode="after")
    def _value_fits_op(self) -> Rule:
        if self.op in ("is_true", "is_false"):
            return self
        if self.value is None:
            raise ValueError(f"la règle « {self.field} {self.op} » demande une valeur")
        if self.op in ("in", "not_in") and not isinstance(self.value, list | tuple):
            raise ValueError(f"la règle « {self.field} {self.op} » demande une liste")
        if self.op in ("gte", "lte", "gt", "lt") and not isinstance(self.value, int | float):
            raise ValueError(f"la règle « {self.field} {self.op} » demande un nombre")
        return self

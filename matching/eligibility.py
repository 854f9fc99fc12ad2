"""Evaluate an offer's eligibility rules against a person's facts.

Why: a chargé·e must never be proposed a partner the person cannot use, and when an offer
is ruled out the page must say which rule did it, in French. Rules are data
(`partners.eligibility_rules.Rule`); here they are compiled once into small predicates,
because routing evaluates them for up to a million freins per run.

Missing information is never guessed: a rule whose fact is unknown (``None`` or absent)
fails with "information manquante : <champ>", so the chargé·e knows what to ask for.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from matching.facts import PersonFacts
from partners.eligibility_rules import RULE_FIELDS, Rule

_MISSING = object()

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gte": operator.ge,
    "lte": operator.le,
    "gt": operator.gt,
    "lt": operator.lt,
    "in": lambda actual, allowed: actual in allowed,  # type: ignore[operator]
    "not_in": lambda actual, allowed: actual not in allowed,  # type: ignore[operator]
    "is_true": lambda actual, _: actual is True,
    "is_false": lambda actual, _: actual is False,
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a person may use an offer, and the rules (with French reasons) that failed."""

    eligible: bool
    failed: tuple[Rule, ...] = ()
    reasons: tuple[str, ...] = ()

    @property
    def first_reason(self) -> str | None:
        """The reason shown when only one line fits (lists of rejected offers)."""
        return self.reasons[0] if self.reasons else None


ELIGIBLE = Verdict(True)


def missing_reason(field: str) -> str:
    """French reason for a rule whose fact is unknown."""
    return f"information manquante : {RULE_FIELDS.get(field, field)}"


@dataclass(frozen=True, slots=True)
class _Compiled:
    rule: Rule
    field: str
    compare: Callable[[Any, Any], bool]
    value: object
    missing: str

    def check(self, facts: PersonFacts) -> str | None:
        """None when the rule holds, else the French reason it fails."""
        actual = getattr(facts, self.field, _MISSING)
        if actual is None or actual is _MISSING:
            return self.missing
        try:
            ok = self.compare(actual, self.value)
        except TypeError:  # e.g. a text compared with a number: the rule cannot hold
            ok = False
        return None if ok else self.rule.label


def _compile(rule: Rule) -> _Compiled:
    value: object = rule.value
    if rule.op in ("in", "not_in") and isinstance(value, list | tuple):
        try:
            value = frozenset(value)
        except TypeError:
            value = tuple(value)
    return _Compiled(rule, rule.field, _COMPARE[rule.op], value, missing_reason(rule.field))


class RuleSet:
    """Rules of one offer compiled once; `check(facts)` returns a `Verdict`.

    Why: compiling turns each rule into a getattr and a comparison; the router keeps one
    `RuleSet` per offer and memoizes verdicts per distinct facts profile (`fields`).
    """

    __slots__ = ("rules", "fields", "_compiled", "_key", "_memo")

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self._compiled = tuple(_compile(rule) for rule in self.rules)
        self.fields: tuple[str, ...] = tuple(dict.fromkeys(rule.field for rule in self.rules))
        self._key = profile_getter(self.fields)
        self._memo: dict[object, Verdict] = {}

    def check_cached(self, facts: PersonFacts) -> Verdict:
        """`check` memoized on the values of the fields these rules read.

        Why: a million freins share few distinct (age, household size, programme...)
        profiles per offer, so most verdicts are one attribute read and one dict lookup.
        """
        key = self._key(facts)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = self.check(facts)
        return found

    def check(self, facts: PersonFacts) -> Verdict:
        """Evaluate every rule (all failures are reported, not only the first)."""
        failed: list[Rule] = []
        reasons: list[str] = []
        for compiled in self._compiled:
            reason = compiled.check(facts)
            if reason is not None:
                failed.append(compiled.rule)
                reasons.append(reason)
        if not failed:
            return ELIGIBLE
        return Verdict(False, tuple(failed), tuple(reasons))


def _constant(_: PersonFacts) -> object:
    return None


def profile_getter(fields: Sequence[str]) -> Callable[[PersonFacts], object]:
    """A fast key of the facts' values for `fields`: equal keys give equal verdicts.

    Fields unknown to `PersonFacts` read as a marker instead of raising.
    """
    names = tuple(fields)
    if not names:
        return _constant
    if all(hasattr(PersonFacts, f) for f in names):
        return operator.attrgetter(*names)
    return lambda facts: tuple(getattr(facts, f, _MISSING) for f in names)


def evaluate(rules: Sequence[Rule], facts: PersonFacts) -> Verdict:
    """Is this person eligible under these rules? Names every failed rule, in French."""
    return RuleSet(rules).check(facts)

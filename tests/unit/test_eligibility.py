"""Eligibility rules: every operator, missing information, and the reasons given."""

from __future__ import annotations

from typing import Any

import pytest

from matching.eligibility import RuleSet, evaluate
from matching.facts import PersonFacts
from partners.eligibility_rules import Rule


def person(**kw: Any) -> PersonFacts:
    base: dict[str, Any] = {"person_id": 1, "programme": "cvg", "territory": "lyon", "age": 30}
    base.update(kw)
    return PersonFacts(**base)


def rule(field: str, op: str, value: Any = None, label: str = "refus") -> Rule:
    return Rule(field=field, op=op, value=value, label=label)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("r", "eligible"),
    [
        (rule("programme", "eq", "cvg"), True),
        (rule("programme", "eq", "phc"), False),
        (rule("programme", "ne", "phc"), True),
        (rule("programme", "ne", "cvg"), False),
        (rule("housing", "in", ["street", "emergency_shelter"]), True),
        (rule("housing", "in", ["housed"]), False),
        (rule("housing", "not_in", ["housed"]), True),
        (rule("housing", "not_in", ["street"]), False),
        (rule("household_size", "lte", 3), True),
        (rule("household_size", "lte", 2), False),
        (rule("household_size", "gte", 3), True),
        (rule("household_size", "gte", 4), False),
        (rule("household_size", "lt", 4), True),
        (rule("household_size", "lt", 3), False),
        (rule("household_size", "gt", 2), True),
        (rule("household_size", "gt", 3), False),
        (rule("rqth", "is_true"), True),
        (rule("rqth", "is_false"), False),
        (rule("has_resources", "is_false"), True),
        (rule("has_resources", "is_true"), False),
        (rule("vulnerability", "is_true"), True),
    ],
)
def test_operators(r: Rule, eligible: bool) -> None:
    facts = person(
        housing="street",
        household_size=3,
        rqth=True,
        has_resources=False,
        vulnerability_flags=frozenset({"violence"}),
    )
    verdict = evaluate((r,), facts)
    assert verdict.eligible is eligible
    assert verdict.failed == (() if eligible else (r,))


def test_no_rules_means_eligible() -> None:
    verdict = evaluate((), person())
    assert verdict.eligible and verdict.failed == () and verdict.reasons == ()


def test_failed_rules_are_all_named_with_their_french_label() -> None:
    adult = rule("age", "gte", 18, "Réservé aux personnes majeures.")
    small = rule("household_size", "lte", 2, "Foyers de deux personnes au plus.")
    phc = rule("programme", "eq", "cvg", "Réservé au programme CVG.")
    verdict = evaluate((adult, small, phc), person(age=17, household_size=5))
    assert not verdict.eligible
    assert verdict.failed == (adult, small)
    assert verdict.reasons == (
        "Réservé aux personnes majeures.",
        "Foyers de deux personnes au plus.",
    )
    assert verdict.first_reason == "Réservé aux personnes majeures."


def test_missing_fact_fails_with_information_manquante() -> None:
    adult = rule("age", "gte", 18, "Réservé aux personnes majeures.")
    verdict = evaluate((adult,), person(age=None))
    assert not verdict.eligible
    assert verdict.failed == (adult,)
    assert verdict.reasons == ("information manquante : âge",)


def test_missing_territory_is_missing_information_too() -> None:
    verdict = evaluate((rule("territory", "in", ["lyon"]),), person(territory=None))
    assert verdict.reasons == ("information manquante : territoire",)


def test_type_mismatch_fails_with_rule_label_instead_of_raising() -> None:
    weird = rule("programme", "gte", 3, "Programme incompatible.")
    verdict = evaluate((weird,), person())
    assert verdict.reasons == ("Programme incompatible.",)


def test_cached_check_matches_check_and_depends_only_on_read_fields() -> None:
    rules = RuleSet((rule("age", "gte", 18, "majeur"), rule("household_size", "lte", 4, "foyer")))
    assert rules.fields == ("age", "household_size")
    a = person(person_id=1, age=40, household_size=6)
    b = person(person_id=2, age=40, household_size=6, housing="street")  # same profile
    assert rules.check_cached(a) == rules.check(a)
    assert rules.check_cached(b) is rules.check_cached(a)
    c = person(person_id=3, age=40, household_size=2)
    assert rules.check_cached(c).eligible

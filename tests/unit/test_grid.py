"""The priority grid: every criterion, its caps and boundaries, and the breakdown."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matching.facts import HOUSING_SITUATIONS, VULNERABILITY_FLAGS, PersonFacts
from matching.grid import Grid, GridWeights, Score, add_months, default_weights, score

TODAY = date(2025, 3, 12)


def person(**kw: object) -> PersonFacts:
    base: dict[str, object] = {"person_id": 1, "programme": "cvg", "territory": "lyon"}
    base.update(kw)
    return PersonFacts(**base)  # type: ignore[arg-type]


def points(facts: PersonFacts, waiting_since: date | None = None) -> Score:
    return score(facts, today=TODAY, waiting_since=waiting_since)


def codes(s: Score) -> dict[str, int]:
    return {line.code: line.points for line in s.breakdown}


def test_housed_person_without_criteria_scores_zero() -> None:
    s = points(person())
    assert s.total == 0
    assert s.breakdown == ()
    assert "aucun critère" in s.explain_fr()


@pytest.mark.parametrize(
    ("housing", "code", "expected"),
    [
        ("street", "street", 30),
        ("emergency_shelter", "emergency_shelter", 20),
        ("hosted_third_party", "hosted_third_party", 12),
        ("integration_housing", "integration_housing", 8),
    ],
)
def test_housing_situation_points(housing: str, code: str, expected: int) -> None:
    s = points(person(housing=housing))
    assert codes(s) == {code: expected}
    assert s.total == expected


def test_street_label_is_french_with_points() -> None:
    s = points(person(housing="street"))
    assert s.breakdown[0].label == "À la rue actuellement : +30"


@pytest.mark.parametrize(
    ("months", "expected"),
    [
        (0, {}),
        (5, {}),
        (6, {"street_6_to_24_months": 5}),
        (24, {"street_6_to_24_months": 5}),
        (25, {"street_over_24_months": 10}),
        (60, {"street_over_24_months": 10}),
    ],
)
def test_time_on_street_boundaries(months: int, expected: dict[str, int]) -> None:
    assert codes(points(person(street_months=months))) == expected


def test_no_resources() -> None:
    s = points(person(has_resources=False))
    assert codes(s) == {"no_resources": 10}
    assert s.breakdown[0].label == "Sans ressources : +10"


@pytest.mark.parametrize(
    ("open_freins", "expected"), [(1, 0), (2, 0), (3, 2), (4, 4), (7, 10), (8, 10), (30, 10)]
)
def test_open_freins_beyond_two_capped_at_ten(open_freins: int, expected: int) -> None:
    s = points(person(open_freins=open_freins))
    assert codes(s).get("freins_beyond_two", 0) == expected
    if open_freins == 4:
        assert s.breakdown[0].label == "4 freins ouverts (2 au-delà de deux) : +4"


def test_minor_children() -> None:
    assert codes(points(person(minor_children=2))) == {"minor_children": 8}
    assert codes(points(person(minor_children=0))) == {}


@pytest.mark.parametrize("flag", sorted(VULNERABILITY_FLAGS))
def test_each_vulnerability_flag(flag: str) -> None:
    s = points(person(vulnerability_flags=frozenset({flag})))
    assert codes(s) == {"vulnerability": 10}
    assert VULNERABILITY_FLAGS[flag] in s.breakdown[0].label


def test_several_vulnerability_flags_count_once() -> None:
    s = points(person(vulnerability_flags=frozenset({"violence", "pregnancy"})))
    assert codes(s) == {"vulnerability": 10}


def test_health_urgency() -> None:
    assert codes(points(person(health_urgency=True))) == {"health_urgency": 15}


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        (None, 0),
        (TODAY - timedelta(days=1), 0),  # already past
        (TODAY, 10),
        (add_months(TODAY, 3), 10),  # exactly three months ahead: included
        (add_months(TODAY, 3) + timedelta(days=1), 0),
        (TODAY + timedelta(days=400), 0),
    ],
)
def test_programme_ending_within_three_months(end: date | None, expected: int) -> None:
    assert codes(points(person(programme_end=end))).get("programme_ending", 0) == expected


@pytest.mark.parametrize(
    ("days", "expected"), [(0, 0), (6, 0), (7, 1), (13, 1), (14, 2), (182, 26), (700, 26)]
)
def test_one_point_per_full_week_waiting_capped_at_26(days: int, expected: int) -> None:
    s = points(person(), waiting_since=TODAY - timedelta(days=days))
    assert codes(s).get("waiting", 0) == expected


def test_no_waiting_date_and_future_date_give_no_points() -> None:
    assert points(person(), waiting_since=None).total == 0
    assert points(person(), waiting_since=TODAY + timedelta(days=30)).total == 0


def test_everything_adds_up_in_breakdown_and_sentence() -> None:
    facts = person(
        housing="street",
        street_months=30,
        has_resources=False,
        open_freins=4,
        minor_children=1,
        vulnerability_flags=frozenset({"pregnancy"}),
        health_urgency=True,
        programme_end=TODAY + timedelta(days=20),
    )
    s = points(facts, waiting_since=TODAY - timedelta(days=70))
    assert s.total == 30 + 10 + 10 + 4 + 8 + 10 + 15 + 10 + 10
    assert sum(line.points for line in s.breakdown) == s.total
    sentence = s.explain_fr()
    assert sentence.startswith(f"Priorité : {s.total} points")
    assert "À la rue actuellement : +30" in sentence
    assert "Sans ressources : +10" in sentence


def test_weights_come_from_configuration() -> None:
    weights = GridWeights(a_la_rue=50, attente_plafond=3)
    s = score(
        person(housing="street"),
        today=TODAY,
        waiting_since=TODAY - timedelta(days=100),
        weights=weights,
    )
    assert codes(s) == {"street": 50, "waiting": 3}


def test_zero_weight_disables_a_criterion_without_empty_line() -> None:
    grid = Grid(GridWeights(sans_ressources=0))
    s = grid.score(person(has_resources=False), today=TODAY, waiting_since=None)
    assert s.breakdown == ()


def test_add_months_clamps_to_month_end() -> None:
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2024, 11, 30), 3) == date(2025, 2, 28)


facts_strategy = st.builds(
    PersonFacts,
    person_id=st.integers(1, 10),
    programme=st.sampled_from(["cvg", "phc"]),
    territory=st.none() | st.sampled_from(["lyon", "isere"]),
    housing=st.sampled_from(sorted(HOUSING_SITUATIONS)),
    street_months=st.integers(0, 80),
    has_resources=st.booleans(),
    household_size=st.integers(1, 8),
    minor_children=st.integers(0, 4),
    vulnerability_flags=st.frozensets(st.sampled_from(sorted(VULNERABILITY_FLAGS))),
    health_urgency=st.booleans(),
    open_freins=st.integers(0, 15),
    programme_end=st.none() | st.dates(date(2024, 1, 1), date(2026, 12, 31)),
)


@given(facts_strategy, st.none() | st.dates(date(2023, 1, 1), date(2025, 12, 31)))
def test_cached_score_equals_fresh_score_and_sums(facts: PersonFacts, since: date | None) -> None:
    shared = score(facts, today=TODAY, waiting_since=since)
    fresh = Grid(default_weights()).score(facts, today=TODAY, waiting_since=since)
    assert shared == fresh
    assert sum(line.points for line in shared.breakdown) == shared.total
    assert all(
        line.points > 0 and line.label.endswith(f"+{line.points}") for line in shared.breakdown
    )

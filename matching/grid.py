"""The priority grid ("cotation"): published points per criterion, with their breakdown.

Why: chargé·es and coordinators must be able to see *why* someone is ahead in a queue or
gets a scarce slot. Like the social-housing *cotation*, every criterion gives points, the
total ranks the queue and weighs the allocation, and every total carries its breakdown in
French. The weights are data (`GridWeights`, loaded from `matching/data/rules.toml`), so
the national team changes them without touching code.

Speed: the intake scores up to a million freins per run. A score depends only on a small
tuple of facts (`Grid` builds it), so `Grid` memoizes in two levels: the person part
(housing, time on the street, resources, freins, children, vulnerability, health urgency)
and, under it, the time part (contract ending soon, whole weeks waiting, capped). A cache
hit costs two dict lookups; `Score` objects are immutable and shared between freins.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from typing import Annotated, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from matching.facts import VULNERABILITY_FLAGS, PersonFacts

Points = Annotated[int, Field(ge=0, strict=True)]
Positive = Annotated[int, Field(gt=0, strict=True)]


class GridWeights(BaseModel):
    """Points of each criterion. Defaults are the published national grid.

    Field names are English for developers; the aliases are the keys of the `[grille]`
    table of the rules file, which the national team edits.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    street: Points = Field(30, alias="a_la_rue")
    emergency_shelter: Points = Field(20, alias="hebergement_urgence")
    hosted_third_party: Points = Field(12, alias="heberge_tiers")
    integration_housing: Points = Field(8, alias="logement_insertion")
    street_over_24_months: Points = Field(10, alias="rue_plus_de_24_mois")
    street_6_to_24_months: Points = Field(5, alias="rue_6_a_24_mois")
    no_resources: Points = Field(10, alias="sans_ressources")
    per_frein_beyond_two: Points = Field(2, alias="par_frein_au_dela_de_deux")
    freins_max: Points = Field(10, alias="freins_plafond")
    minor_children: Points = Field(8, alias="enfants_mineurs")
    vulnerability: Points = Field(10, alias="vulnerabilite")
    health_urgency: Points = Field(15, alias="urgence_sante")
    programme_ending: Points = Field(10, alias="fin_de_parcours")
    programme_ending_months: Positive = Field(3, alias="fin_de_parcours_mois")
    per_week_waiting: Points = Field(1, alias="par_semaine_attente")
    waiting_max: Points = Field(26, alias="attente_plafond")


def default_weights() -> GridWeights:
    """The published national grid (every field at its default)."""
    return _DEFAULT_WEIGHTS


_DEFAULT_WEIGHTS = GridWeights.model_validate({})


class Line(NamedTuple):
    """One line of a breakdown: stable code, French label (with the points), points."""

    code: str
    label: str
    points: int


@dataclass(frozen=True, slots=True)
class Score:
    """A total and the lines that make it up (the lines always sum to the total)."""

    total: int
    breakdown: tuple[Line, ...]

    def explain_fr(self) -> str:
        """One French sentence listing the criteria, for pages, exports and emails."""
        if not self.breakdown:
            return "Priorité : 0 point (aucun critère de la grille ne s'applique)."
        lines = " ; ".join(line.label for line in self.breakdown)
        unit = "point" if self.total <= 1 else "points"
        return f"Priorité : {self.total} {unit} ({lines})."


_HOUSING_LINES: dict[str, tuple[str, str, str]] = {
    # housing situation -> (code, label prefix, GridWeights field)
    "street": ("street", "À la rue actuellement", "street"),
    "emergency_shelter": ("emergency_shelter", "En hébergement d'urgence", "emergency_shelter"),
    "hosted_third_party": ("hosted_third_party", "Hébergé·e par un tiers", "hosted_third_party"),
    "integration_housing": (
        "integration_housing",
        "En logement d'insertion",
        "integration_housing",
    ),
}


def add_months(day: date, months: int) -> date:
    """`day` plus whole calendar months, clamped to the month's last day (31/01 + 1 = 28/02)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


ENDING = 1 << 16  # flag added to the weeks waiting in time keys


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n > 1 else ''}"


class PersonPart:
    """Cached lines that depend only on the person, plus a cache of full scores under it."""

    __slots__ = ("lines", "total", "scores")

    def __init__(self, lines: tuple[Line, ...]) -> None:
        self.lines = lines
        self.total = sum(line.points for line in lines)
        self.scores: dict[int, Score] = {}  # key: ENDING if ending soon, + weeks waiting


class Grid:
    """A grid with fixed weights and its score cache; build one per run and reuse it.

    Why a class: the cache is only valid for one set of weights, so it lives with them.
    """

    __slots__ = ("weights", "_persons", "_ending_months", "_max_weeks", "_horizon")

    def __init__(self, weights: GridWeights | None = None) -> None:
        self.weights = weights or default_weights()
        self._persons: dict[tuple[object, ...], PersonPart] = {}
        self._ending_months = self.weights.programme_ending_months
        self._horizon: tuple[date, date] | None = None  # (today, today + ending months)
        w = self.weights
        # Weeks beyond this number give no more points, so they share one cache entry.
        self._max_weeks = -(-w.waiting_max // w.per_week_waiting) if w.per_week_waiting > 0 else 0

    def score(self, facts: PersonFacts, *, today: date, waiting_since: date | None) -> Score:
        """Score of one frein of a person on `today`; memoized (see module docstring)."""
        part, ending = self.person_terms(facts, today)
        key = ending + self.weeks_waiting(waiting_since, today)
        found = part.scores.get(key)
        return found if found is not None else self.complete(part, key)

    # The three steps of `score`, public so that a hot loop can reuse the person terms of
    # a person with several freins (the router keeps them per batch).

    def person_terms(self, facts: PersonFacts, today: date) -> tuple[PersonPart, int]:
        """The person's cached lines, and `ENDING` if the programme ends soon, else 0."""
        months = facts.street_months
        person_key = (
            facts.housing,
            2 if months > 24 else (1 if months >= 6 else 0),
            facts.has_resources,
            facts.open_freins if facts.open_freins > 2 else 2,
            facts.minor_children > 0,
            facts.vulnerability_flags,
            facts.health_urgency,
        )
        part = self._persons.get(person_key)
        if part is None:
            part = self._persons[person_key] = PersonPart(self._person_lines(facts))
        end = facts.programme_end
        if end is None or end < today:
            return part, 0
        horizon = self._horizon
        if horizon is None or horizon[0] != today:
            horizon = self._horizon = (today, add_months(today, self._ending_months))
        return part, ENDING if end <= horizon[1] else 0

    def weeks_waiting(self, waiting_since: date | None, today: date) -> int:
        """Whole weeks waiting, capped where more weeks give no more points."""
        if waiting_since is None or waiting_since >= today:
            return 0
        weeks = (today - waiting_since).days // 7
        return weeks if weeks < self._max_weeks else self._max_weeks

    @property
    def max_weeks(self) -> int:
        return self._max_weeks

    def complete(self, part: PersonPart, key: int) -> Score:
        """The score for `key` = ending flag + weeks (memoized under the person part)."""
        found = part.scores.get(key)
        if found is None:
            found = part.scores[key] = self._full_score(part, key >= ENDING, key % ENDING)
        return found

    def _person_lines(self, facts: PersonFacts) -> tuple[Line, ...]:
        w = self.weights
        lines: list[Line] = []

        def add(code: str, label: str, points: int) -> None:
            if points > 0:
                lines.append(Line(code, f"{label} : +{points}", points))

        housing = _HOUSING_LINES.get(facts.housing)
        if housing is not None:
            code, label, weight_field = housing
            add(code, label, getattr(w, weight_field))
        if facts.street_months > 24:
            add("street_over_24_months", "À la rue depuis plus de 24 mois", w.street_over_24_months)
        elif facts.street_months >= 6:
            add("street_6_to_24_months", "À la rue depuis 6 à 24 mois", w.street_6_to_24_months)
        if not facts.has_resources:
            add("no_resources", "Sans ressources", w.no_resources)
        beyond = facts.open_freins - 2
        if beyond > 0:
            points = min(beyond * w.per_frein_beyond_two, w.freins_max)
            label = f"{facts.open_freins} freins ouverts ({beyond} au-delà de deux"
            label += ", plafond atteint)" if points == w.freins_max else ")"
            add("freins_beyond_two", label, points)
        if facts.minor_children > 0:
            add("minor_children", "Enfants mineurs dans le foyer", w.minor_children)
        if facts.vulnerability_flags:
            names = ", ".join(
                VULNERABILITY_FLAGS.get(flag, flag) for flag in sorted(facts.vulnerability_flags)
            )
            add("vulnerability", f"Vulnérabilité signalée ({names})", w.vulnerability)
        if facts.health_urgency:
            add("health_urgency", "Urgence santé signalée", w.health_urgency)
        return tuple(lines)

    def _full_score(self, part: PersonPart, ending: bool, weeks: int) -> Score:
        w = self.weights
        lines = list(part.lines)
        if ending and w.programme_ending > 0:
            label = f"Fin de contrat ou de parcours dans les {self._ending_months} mois"
            lines.append(
                Line("programme_ending", f"{label} : +{w.programme_ending}", w.programme_ending)
            )
        waiting = min(weeks * w.per_week_waiting, w.waiting_max)
        if waiting > 0:
            label = f"En attente depuis {_plural(weeks, 'semaine')}"
            if waiting == w.waiting_max:
                label = f"En attente depuis {_plural(weeks, 'semaine')} ou plus (plafond atteint)"
            lines.append(Line("waiting", f"{label} : +{waiting}", waiting))
        return Score(sum(line.points for line in lines), tuple(lines))


_GRIDS: dict[GridWeights, Grid] = {}


def score(
    facts: PersonFacts,
    *,
    today: date,
    waiting_since: date | None,
    weights: GridWeights | None = None,
) -> Score:
    """Score one frein; convenient entry point sharing one cached `Grid` per weights.

    Hot paths (the router) hold their own `Grid` and skip the weights lookup.
    """
    w = weights or default_weights()
    grid = _GRIDS.get(w)
    if grid is None:
        grid = _GRIDS[w] = Grid(w)
    return grid.score(facts, today=today, waiting_since=waiting_since)

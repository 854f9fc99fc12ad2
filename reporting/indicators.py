"""The indicator model: a population, a numerator, a period, filters, and a French definition.

Why: a figure shown without what it counts cannot be trusted nor compared with the
published report. Every indicator therefore carries its definition next to its value, gives
its numerator and denominator, and says "non calculable" with the reason instead of
dividing by zero. Comparisons between people whose chargé·e de partenariats was mobilised
and the others give both groups, the difference in points and the ratio, so nobody reads a
"+15 %" without knowing which one it is, nor on how many people it rests.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal, TypeVar

from reporting import formats
from reporting.records import Period, Person, PoolRecord, Referral

Kind = Literal["count", "rate", "difference", "median_days"]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Scope:
    """The filters: None means "all" (the whole network, both programmes, every chantier)."""

    territory: str | None = None
    programme: str | None = None
    chantier: str | None = None

    def admits_person(self, p: Person) -> bool:
        return self._admits(p.territory, p.programme, p.chantier)

    def admits_referral(self, r: Referral) -> bool:
        return self._admits(r.territory, r.programme, r.chantier)

    def admits_pool(self, pool: PoolRecord) -> bool:
        """Pools belong to a territory only: the programme and chantier filters do not apply."""
        return self.territory is None or pool.territory == self.territory

    def _admits(self, territory: str | None, programme: str, chantier: str) -> bool:
        return (
            (self.territory is None or territory == self.territory)
            and (self.programme is None or programme == self.programme)
            and (self.chantier is None or chantier == self.chantier)
        )


@dataclass(frozen=True, slots=True)
class Data:
    """Everything the indicators read, as the engine extracted it."""

    people: tuple[Person, ...] = ()
    referrals: tuple[Referral, ...] = ()
    pools: tuple[PoolRecord, ...] = ()
    # Each scope's subset, filtered once: the ~40 indicators of a report share three scopes,
    # and filtering a million referrals for each of them was most of a report's time.
    _scoped: dict[Scope, Data] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(
        cls,
        people: Iterable[Person] = (),
        referrals: Iterable[Referral] = (),
        pools: Iterable[PoolRecord] = (),
    ) -> Data:
        return cls(tuple(people), tuple(referrals), tuple(pools))

    def scoped(self, scope: Scope) -> Data:
        found = self._scoped.get(scope)
        if found is None:
            found = self._scoped[scope] = Data(
                tuple(p for p in self.people if scope.admits_person(p)),
                tuple(r for r in self.referrals if scope.admits_referral(r)),
                tuple(pool for pool in self.pools if scope.admits_pool(pool)),
            )
        return found


@dataclass(frozen=True, slots=True)
class Context:
    """What a measure sees: data already filtered, the period, and the observation instant."""

    data: Data
    period: Period
    as_of: datetime  # timezone-aware


@dataclass(frozen=True, slots=True)
class Group:
    """One side of a comparison: its size and how many of it reached the outcome."""

    key: str
    label: str
    numerator: int
    denominator: int

    @property
    def rate(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "rate": self.rate,
        }


@dataclass(frozen=True, slots=True)
class Measure:
    """A computed value before it is dressed with its label, period and territory."""

    value: float | None
    numerator: int | None = None
    denominator: int | None = None
    note: str | None = None  # why the value is None, in French
    groups: tuple[Group, ...] = ()
    ratio: float | None = None


def count(n: int) -> Measure:
    return Measure(n, numerator=n)


def rate(numerator: int, denominator: int, empty: str) -> Measure:
    """numerator / denominator; "non calculable" with `empty` as the reason when nobody counts."""
    if denominator == 0:
        return Measure(None, numerator, denominator, note=empty)
    return Measure(numerator / denominator, numerator, denominator)


def share(population: Iterable[T], predicate: Callable[[T], bool], empty: str) -> Measure:
    """The share of the population for which the predicate holds."""
    members = list(population)
    return rate(sum(1 for m in members if predicate(m)), len(members), empty)


def median_days(durations: Sequence[timedelta], empty: str) -> Measure:
    """The median duration in days (fractions kept); the denominator is how many were measured."""
    if not durations:
        return Measure(None, None, 0, note=empty)
    value = statistics.median(d.total_seconds() / 86400 for d in durations)
    return Measure(value, None, len(durations))


def compare(with_officer: Group, without_officer: Group) -> Measure:
    """Difference in points (as a fraction) and ratio of the two groups' rates."""
    a, b = with_officer.rate, without_officer.rate
    groups = (with_officer, without_officer)
    if a is None or b is None:
        empty = with_officer if a is None else without_officer
        note = f"aucune personne dans le groupe « {empty.label} »"
        return Measure(None, note=note, groups=groups)
    return Measure(a - b, groups=groups, ratio=a / b if b else None)


@dataclass(frozen=True, slots=True)
class Result:
    """One figure, ready to show: value with its definition, what it is made of, and where."""

    code: str
    key: str  # unique among indicators: "<programme>/<code>" for programme figures
    section: str  # "cvg", "phc" or "operations"
    programme: str | None
    label: str
    definition: str
    kind: Kind
    period: str
    territory: str | None
    value: float | None
    numerator: int | None = None
    denominator: int | None = None
    note: str | None = None
    groups: tuple[Group, ...] = ()
    ratio: float | None = None

    @property
    def computable(self) -> bool:
        return self.value is not None

    @property
    def display(self) -> str:
        return formats.display(self)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `aiguillage report`, plus the definition and how it reads."""
        d: dict[str, Any] = {
            "code": self.code,
            "programme": self.programme,
            "label": self.label,
            "value": self.value,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "period": self.period,
            "territory": self.territory,
            "definition": self.definition,
            "kind": self.kind,
            "display": self.display,
        }
        if self.note is not None:
            d["note"] = self.note
        if self.kind == "difference":
            d["groups"] = [g.as_dict() for g in self.groups]
            d["ratio"] = self.ratio
        return d


def end_of(period: Period) -> datetime:
    """The instant the period ends: midnight UTC after its last day."""
    return datetime.combine(period.end + timedelta(days=1), time.min, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Indicator:
    """A named, defined computation; `programme` None means it reads both programmes."""

    code: str
    programme: str | None
    label: str
    definition: str
    kind: Kind
    measure: Callable[[Context], Measure] = field(repr=False, compare=False)

    @property
    def key(self) -> str:
        return f"{self.programme}/{self.code}" if self.programme else self.code

    @property
    def section(self) -> str:
        return self.programme or "operations"

    def compute(
        self,
        data: Data,
        period: Period,
        scope: Scope | None = None,
        as_of: datetime | None = None,
    ) -> Result:
        """The indicator over the data in scope (a programme figure reads its programme only)."""
        scope = scope or Scope()
        if self.programme is not None:
            if scope.programme not in (None, self.programme):
                raise ValueError(
                    f"{self.key} concerns programme {self.programme!r}, not {scope.programme!r}"
                )
            scope = replace(scope, programme=self.programme)
        moment = end_of(period) if as_of is None else aware(as_of)
        m = self.measure(Context(data.scoped(scope), period, moment))
        return Result(
            code=self.code,
            key=self.key,
            section=self.section,
            programme=scope.programme,
            label=self.label,
            definition=self.definition,
            kind=self.kind,
            period=period.label,
            territory=scope.territory,
            value=m.value,
            numerator=m.numerator,
            denominator=m.denominator,
            note=m.note,
            groups=m.groups,
            ratio=m.ratio,
        )


def aware(dt: datetime) -> datetime:
    """Naive instants are taken as UTC (the engine stores UTC only)."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)

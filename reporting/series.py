"""Indicators over time (one value per month) and across territories (one row each).

Why: the pages show how a figure moves through the year and how territories compare; both
are the same indicators computed over other periods or scopes, so they reuse the catalogue
rather than recounting, and a month or territory with nobody in it reads "non calculable".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from reporting.catalogue import find, indicators
from reporting.indicators import Data, Indicator, Kind, Result, Scope
from reporting.records import Period, Person, PoolRecord, Referral


def monthly_series(
    code: str,
    year: int,
    *,
    people: Iterable[Person] = (),
    referrals: Iterable[Referral] = (),
    pools: Iterable[PoolRecord] = (),
    territory: str | None = None,
    programme: str | None = None,
    chantier: str | None = None,
) -> list[Result]:
    """Twelve results, January to December, each over its month (open items read at its end)."""
    data = Data.of(people, referrals, pools)
    indicator = find(code, programme, data)
    scope = Scope(territory, programme, chantier)
    return [indicator.compute(data, Period.month(year, m), scope) for m in range(1, 13)]


@dataclass(frozen=True, slots=True)
class Column:
    key: str  # Indicator.key: "<programme>/<code>" for programme figures, else the code
    code: str
    programme: str | None
    label: str
    kind: Kind


@dataclass(frozen=True, slots=True)
class TerritoryRow:
    territory: str
    results: tuple[Result, ...]  # in the order of the table's columns

    def cell(self, key: str) -> Result:
        return next(r for r in self.results if r.key == key)


@dataclass(frozen=True, slots=True)
class TerritoryTable:
    period: str
    columns: tuple[Column, ...]
    rows: tuple[TerritoryRow, ...]


def territories(data: Data) -> list[str]:
    """The territory codes present in the data (people outside territories have none)."""
    codes = {p.territory for p in data.people}
    codes |= {r.territory for r in data.referrals}
    codes |= {p.territory for p in data.pools}
    return sorted(c for c in codes if c is not None)


def by_territory(
    period: Period,
    *,
    keys: Sequence[str] | None = None,
    people: Iterable[Person] = (),
    referrals: Iterable[Referral] = (),
    pools: Iterable[PoolRecord] = (),
    programme: str | None = None,
    chantier: str | None = None,
    as_of: datetime | None = None,
) -> TerritoryTable:
    """One row per territory code in the data, one column per indicator key.

    Default columns: the fixed catalogue for the programme filter. People outside the
    Convergence territories count in the network figures only, not in any row.
    """
    data = Data.of(people, referrals, pools)
    chosen: list[Indicator] = (
        list(indicators(programme)) if keys is None else [find(k, programme, data) for k in keys]
    )
    columns = tuple(Column(i.key, i.code, i.programme, i.label, i.kind) for i in chosen)
    rows = tuple(
        TerritoryRow(
            code,
            tuple(i.compute(data, period, Scope(code, programme, chantier), as_of) for i in chosen),
        )
        for code in territories(data)
    )
    return TerritoryTable(period.label, columns, rows)

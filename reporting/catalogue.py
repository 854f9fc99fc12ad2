"""The list of indicators and the entry points that compute them for a period and filters.

Why: the CLI, the pages, the exports and the snapshot flow must show the same figures in the
same order; they all ask here. Programme figures share codes across programmes (the report
gives "salarié·es accompagné·es" for both), so an indicator is found by its code and, when
the code is ambiguous, its programme.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from reporting import impact, operations
from reporting.indicators import Data, Indicator, Result, Scope
from reporting.records import Period, Person, PoolRecord, Referral

PROGRAMMES: dict[str, str] = {"cvg": "Convergence", "phc": "Premières Heures en Chantier"}


def indicators(programme: str | None = None) -> tuple[Indicator, ...]:
    """The fixed catalogue: programme figures (of that programme only if given), operations."""
    figures = tuple(i for i in impact.INDICATORS if programme in (None, i.programme))
    return figures + operations.STATIC


def find(code: str, programme: str | None = None, data: Data | None = None) -> Indicator:
    """The indicator of that code (or key "cvg/<code>"); breakdown codes "<family>.<key>" too."""
    if "/" in code:
        programme, _, code = code.partition("/")
    matches = [
        i
        for i in indicators()
        if i.code == code and (programme is None or i.programme in (None, programme))
    ]
    figures = [i for i in matches if i.programme is not None]
    if len(figures) > 1:
        raise ValueError(
            f"L'indicateur {code} existe pour plusieurs programmes : préciser le programme "
            f"({', '.join(i.programme or '' for i in figures)})."
        )
    if matches:
        return matches[0]
    member = operations.family_member(code, data or Data())
    if member is None:
        raise ValueError(f"Indicateur inconnu : {code}.")
    return member


def _check(programme: str | None) -> None:
    if programme is not None and programme not in PROGRAMMES:
        raise ValueError(f"Programme inconnu : {programme} (attendu : cvg ou phc).")


def compute_all(
    period: Period,
    *,
    people: Iterable[Person] = (),
    referrals: Iterable[Referral] = (),
    pools: Iterable[PoolRecord] = (),
    territory: str | None = None,
    programme: str | None = None,
    chantier: str | None = None,
    as_of: datetime | None = None,
) -> list[Result]:
    """Every indicator for the period and filters: CVG figures, PHC figures, then operations.

    The operational breakdowns per partner, offer and pool are those present in the data;
    `as_of` (default: the end of the period) is the instant open and overdue items are read.
    """
    _check(programme)
    data = Data.of(people, referrals, pools)
    scope = Scope(territory, programme, chantier)
    catalogue = list(indicators(programme)) + operations.discovered(data.scoped(scope), period)
    return [i.compute(data, period, scope, as_of) for i in catalogue]


def compute(
    code: str,
    period: Period,
    *,
    people: Iterable[Person] = (),
    referrals: Iterable[Referral] = (),
    pools: Iterable[PoolRecord] = (),
    territory: str | None = None,
    programme: str | None = None,
    chantier: str | None = None,
    as_of: datetime | None = None,
) -> Result:
    """One indicator by code; `programme` both picks the figure and filters the data."""
    _check(programme)
    data = Data.of(people, referrals, pools)
    indicator = find(code, programme, data)
    scope = Scope(territory, programme, chantier)
    return indicator.compute(data, period, scope, as_of)

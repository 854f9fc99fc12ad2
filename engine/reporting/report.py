"""The report of a period: indicators computed from the database, written as text, JSON, CSV
or XLSX, and the snapshots the reporting flow keeps.

Why snapshots: the figures of a closed period are written once (counts only, no person) and
read back by the pages; they survive the anonymisation of the files they were computed from
and never change silently. The current period's rows are refreshed at each run.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from engine.domain.clock import PARIS, Clock, as_utc
from engine.reporting.records import load_people, load_pools, load_referrals
from engine.store import models as m
from engine.store.db import Database, unit_of_work
from reporting.catalogue import compute_all, find
from reporting.formats import csv_rows, csv_text, render_text
from reporting.indicators import Data, Group, Indicator, Result
from reporting.records import Period, PoolRecord

FORMATS = ("text", "json", "csv", "xlsx")


class ReportError(ValueError):
    """A report that cannot be made as asked (French message naming the option)."""


@dataclass(frozen=True)
class ReportData:
    people: list
    referrals: list
    pools: list


def load(db: Database) -> ReportData:
    """Everything the indicators read, once (filters are applied by the pure functions)."""
    with unit_of_work(db) as session:
        return ReportData(load_people(session), load_referrals(session), load_pools(session))


def _known(db: Database, territory: str | None, programme: str | None) -> None:
    if programme is not None and programme not in ("cvg", "phc"):
        raise ReportError(f"--programme : « {programme} » inconnu (attendu : cvg ou phc)")
    if territory is None:
        return
    with unit_of_work(db) as session:
        codes = set(session.scalars(select(m.Territory.code)).all())
    if territory not in codes:
        known = ", ".join(sorted(codes))
        raise ReportError(f"--territory : territoire « {territory} » inconnu (connus : {known})")


def build_report(
    db: Database,
    *,
    year: int,
    territory: str | None = None,
    programme: str | None = None,
    data: ReportData | None = None,
    from_snapshots: bool = True,
) -> list[Result]:
    """Every indicator of ``year`` for the filters.

    A closed year is read from its final snapshot when there is one (written after the year
    ended, see ``write_snapshots``): its figures then stay the same after the files they were
    computed from are anonymised. ``from_snapshots=False`` recomputes from the files."""
    if not 2000 <= year <= 2100:
        raise ReportError(f"--year : année hors de portée ({year})")
    _known(db, territory, programme)
    if from_snapshots and data is None:
        kept = final_year_results(db, year=year, territory=territory, programme=programme)
        if kept is not None:
            return kept
    data = data or load(db)
    return compute_all(
        Period.year(year),
        people=data.people,
        referrals=data.referrals,
        pools=data.pools,
        territory=territory,
        programme=programme,
    )


def as_json(results: list[Result]) -> str:
    return json.dumps({"indicators": [r.as_dict() for r in results]}, ensure_ascii=False, indent=2)


def as_xlsx(results: list[Result]) -> bytes:
    """One sheet "Indicateurs" with the CSV's columns, rates as numbers (openpyxl)."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Indicateurs"
    header, *rows = csv_rows(results)
    sheet.append(header)
    for r, row in zip(results, rows, strict=True):
        values: list[object] = list(row)
        d = r.as_dict()
        for k, key in enumerate(header):
            if key in ("value", "numerator", "denominator"):
                values[k] = d[key]
        sheet.append(values)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def render(results: list[Result], fmt: str) -> bytes:
    """The report in one of FORMATS (UTF-8 bytes)."""
    if fmt == "text":
        return render_text(results, definitions=False).encode()
    if fmt == "json":
        return (as_json(results) + "\n").encode()
    if fmt == "csv":
        return csv_text(results).encode()
    if fmt == "xlsx":
        return as_xlsx(results)
    raise ReportError(f"--format : « {fmt} » inconnu (attendu : {', '.join(FORMATS)})")


def _periods(year: int, today: date) -> list[tuple[Period, bool]]:
    """The year and its months up to today, each with "closed" (ended before today)."""
    out = [(Period.year(year), Period.year(year).end < today)]
    for month in range(1, 13):
        p = Period.month(year, month)
        if p.start <= today:
            out.append((p, p.end < today))
    return out


def _details(r: Result) -> dict[str, object]:
    """What a snapshot keeps beside the value: counts and labels, never a person."""
    out: dict[str, object] = {}
    if r.note:
        out["note"] = r.note
    if r.ratio is not None:
        out["ratio"] = r.ratio
    if r.groups:
        out["groups"] = [[g.key, g.label, g.numerator, g.denominator] for g in r.groups]
    if isinstance(r.value, int):  # a count: read back as an int, as the report prints it
        out["integer"] = True
    return out


# A year's snapshot also keeps, per programme, the operations figures computed on that
# programme's files alone (what ``report --programme`` shows): stored under the programme
# code, skipped by the pages. This operations code, always computed, marks them present.
SCOPED_PROGRAMMES = ("cvg", "phc")
SCOPED_MARK = "referrals_created"


def _final_day(at: datetime) -> date:
    return as_utc(at).astimezone(PARIS).date()


def is_final(session: Session, period: Period, territory: str | None) -> bool:
    """Whether ``period`` has its final snapshot for ``territory`` (None: the network): rows
    computed after the period ended (a snapshot written during the period was provisional),
    with the per-programme rows for a year."""
    T = m.IndicatorSnapshot
    where = [T.period == period.label, T.territory == (territory or "")]
    if len(period.label) == 4:
        where += [T.code == SCOPED_MARK, T.programme == SCOPED_PROGRAMMES[-1]]
    computed = session.scalar(select(func.min(T.computed_at)).where(*where))
    return computed is not None and _final_day(computed) > period.end


def write_snapshots(
    db: Database, *, year: int, clock: Clock, data: ReportData | None = None
) -> dict[str, int]:
    """Snapshot rows of ``year`` and its months, for the network and each territory.

    A closed period's final rows (computed after it ended) are written once and kept; the
    others are replaced. ``data`` saves loading the files again (several years in a row)."""
    data = data or load(db)
    with unit_of_work(db) as session:
        territories: list[str | None] = [None, *session.scalars(select(m.Territory.code)).all()]
    written = kept = 0
    now = clock.now()
    # Each territory's people and referrals, split once (the whole network reads them all).
    parts: dict[str | None, tuple[list, list]] = {t: ([], []) for t in territories}
    for person in data.people:
        if person.territory in parts:
            parts[person.territory][0].append(person)
    for referral in data.referrals:
        if referral.territory in parts:
            parts[referral.territory][1].append(referral)
    parts[None] = (data.people, data.referrals)
    for period, closed in _periods(year, clock.today()):
        for territory in territories:
            key = (period.label, territory or "")
            with unit_of_work(db, immediate=True) as session:
                T = m.IndicatorSnapshot
                where = (T.period == key[0], T.territory == key[1])
                if closed and is_final(session, period, territory):
                    kept += 1
                    continue
                session.execute(delete(T).where(*where))
                people, referrals = parts[territory]
                results = compute_all(
                    period, people=people, referrals=referrals, pools=data.pools,
                    territory=territory,
                )  # fmt: skip
                if period.label == str(year):
                    for programme in SCOPED_PROGRAMMES:
                        results += [
                            r
                            for r in compute_all(
                                period,
                                people=people,
                                referrals=referrals,
                                pools=data.pools,
                                territory=territory,
                                programme=programme,
                            )
                            if r.section == "operations"
                        ]
                session.add_all(
                    T(
                        code=r.code,
                        programme=r.programme or "",
                        period=period.label,
                        territory=territory or "",
                        value=r.value,
                        numerator=r.numerator,
                        denominator=r.denominator,
                        details=_details(r),
                        computed_at=now,
                    )
                    for r in results
                )
                written += len(results)
    return {"rows_written": written, "periods_kept": kept}


def years_without_final_snapshots(db: Database, years: list[int], today: date) -> list[int]:
    """Of ``years``, those with a closed period (the year, or a month of the current year)
    that has no final network snapshot yet: what must be written before files of those years
    are anonymised, so that their figures survive it."""
    out = []
    with unit_of_work(db) as session:
        for year in sorted(set(years)):
            closed = [p for p, is_closed in _periods(year, today) if is_closed]
            if any(not is_final(session, p, None) for p in closed):
                out.append(year)
    return out


def ensure_final_snapshots(db: Database, years: list[int], *, clock: Clock) -> dict[str, int]:
    """Write the missing final snapshots of ``years`` (the files read once for all)."""
    missing = years_without_final_snapshots(db, years, clock.today())
    done = {"years_written": len(missing), "rows_written": 0}
    if not missing:
        return done
    data = load(db)
    for year in missing:
        done["rows_written"] += write_snapshots(db, year=year, clock=clock, data=data)[
            "rows_written"
        ]
    return done


def final_year_results(
    db: Database, *, year: int, territory: str | None, programme: str | None
) -> list[Result] | None:
    """The final snapshot of a closed year as the report computes it (same figures, same
    order), or None when there is none."""
    T = m.IndicatorSnapshot
    period = Period.year(year)
    with unit_of_work(db) as session:
        if not is_final(session, period, territory):
            return None
        rows = session.scalars(
            select(T)
            .where(T.period == period.label, T.territory == (territory or ""))
            .order_by(T.id)
        ).all()
        rebuild = _Rebuilder(load_pools(session))
        out = []
        for row in rows:
            indicator = rebuild.indicator(row.code, row.programme)
            if indicator is None:
                continue
            scoped = _scoped(row, indicator)
            if programme is None:
                keep = not scoped
            else:
                keep = row.programme == programme and (scoped or indicator.programme is not None)
            r = rebuild.result(row) if keep else None
            if r is not None:
                out.append(r)
        return out


def _scoped(row: m.IndicatorSnapshot, indicator: Indicator) -> bool:
    """A per-programme operations row of a year snapshot (see SCOPED_PROGRAMMES)."""
    return indicator.programme is None and row.programme != ""


# --- reading snapshots back (the pages) ---------------------------------------------------


@dataclass(frozen=True)
class StoredReport:
    """The figures of one year for the network or one territory, as the pages show them.

    ``results`` are the year's figures; ``months`` each month's figures (January first, only
    the months that have any); ``territories`` the year's figures of each territory, when
    asked. ``live`` says that at least part of it was computed on the fly because no snapshot
    existed yet; ``computed_at`` is the oldest snapshot shown (None when all was live)."""

    year: int
    territory: str | None
    programme: str | None
    results: list[Result]
    months: dict[str, list[Result]]
    territories: dict[str, list[Result]]
    live: bool
    computed_at: datetime | None

    def series(self, key: str) -> list[Result]:
        """One indicator (by key) across the months that have figures."""
        return [r for month in self.months.values() for r in month if r.key == key]


def snapshot_years(db: Database) -> list[int]:
    """The years that have year snapshots (network or territory), most recent first."""
    T = m.IndicatorSnapshot
    with unit_of_work(db) as session:
        labels = session.scalars(select(T.period).where(func.length(T.period) == 4).distinct())
        return sorted({int(p) for p in labels if p.isdigit()}, reverse=True)


def _keeps(r: Result, programme: str | None) -> bool:
    """With a programme filter: that programme's figures and the network's operations."""
    return programme is None or r.programme in (None, programme)


class _Rebuilder:
    """Snapshot rows back into Results: label, definition and kind from the catalogue (pool
    names from the database), groups, ratio and note from the row's details."""

    def __init__(self, pools: list[PoolRecord]) -> None:
        self.data = Data(pools=tuple(pools))
        self.found: dict[tuple[str, str], Indicator | None] = {}

    def indicator(self, code: str, programme: str) -> Indicator | None:
        key = (code, programme)
        if key not in self.found:
            try:
                self.found[key] = find(code, programme or None, self.data)
            except ValueError:  # a code an older catalogue wrote and this one dropped
                self.found[key] = None
        return self.found[key]

    def result(self, row: m.IndicatorSnapshot) -> Result | None:
        indicator = self.indicator(row.code, row.programme)
        if indicator is None:
            return None
        details = row.details or {}
        groups = tuple(
            Group(str(g[0]), str(g[1]), int(g[2]), int(g[3])) for g in details.get("groups", [])
        )
        ratio = details.get("ratio")
        return Result(
            code=row.code,
            key=indicator.key,
            section=indicator.section,
            programme=row.programme or None,
            label=indicator.label,
            definition=indicator.definition,
            kind=indicator.kind,
            period=row.period,
            territory=row.territory or None,
            value=int(row.value) if details.get("integer") and row.value is not None else row.value,
            numerator=row.numerator,
            denominator=row.denominator,
            note=details.get("note"),
            groups=groups,
            ratio=float(ratio) if ratio is not None else None,
        )


def _months(year: int, today: date) -> list[Period]:
    return [Period.month(year, k) for k in range(1, 13) if Period.month(year, k).start <= today]


def stored_report(
    db: Database,
    *,
    year: int,
    today: date,
    territory: str | None = None,
    programme: str | None = None,
    with_territories: bool = False,
) -> StoredReport:
    """The figures of ``year`` read from the snapshots, for the network (``territory`` None)
    or one territory; what has no snapshot yet is computed on the fly (``live``).

    Why: the pages must answer in milliseconds, not recompute a year of pathways on each
    request; the reporting flow keeps the snapshots up to date. With ``with_territories``,
    each territory's year figures too (the national team's side-by-side table)."""
    if not 2000 <= year <= 2100:
        raise ReportError(f"année hors de portée ({year})")
    _known(db, territory, programme)
    T = m.IndicatorSnapshot
    here = territory or ""
    with unit_of_work(db) as session:
        codes = list(session.scalars(select(m.Territory.code).order_by(m.Territory.code)))
        # The year and its months here; only the year for each territory side by side.
        wanted = (T.territory == here) & ((T.period == str(year)) | T.period.like(f"{year}-%"))
        if with_territories:
            wanted = wanted | (T.territory.in_(codes) & (T.period == str(year)))
        rows = session.scalars(select(T).where(wanted).order_by(T.id)).all()
        rebuild = _Rebuilder(load_pools(session))
        by_key: dict[tuple[str, str], list[Result]] = {}
        oldest: datetime | None = None
        for row in rows:
            found = rebuild.indicator(row.code, row.programme)
            if found is not None and _scoped(row, found):
                continue  # the per-programme operations rows are the report's, not the pages'
            r = rebuild.result(row)
            if r is None or not _keeps(r, programme):
                continue
            by_key.setdefault((row.period, row.territory), []).append(r)
            oldest = row.computed_at if oldest is None else min(oldest, row.computed_at)
    live = False
    data: ReportData | None = None

    def computed(period: Period, where: str | None) -> list[Result]:
        nonlocal data, live
        live = True
        data = data or load(db)
        found = compute_all(
            period,
            people=data.people,
            referrals=data.referrals,
            pools=data.pools,
            territory=where,
        )
        return [r for r in found if _keeps(r, programme)]

    results = by_key.get((str(year), here))
    if results is None:
        results = computed(Period.year(year), territory)
        months = {p.label: computed(p, territory) for p in _months(year, today)}
    else:
        months = {
            p.label: by_key[(p.label, here)]
            for p in _months(year, today)
            if (p.label, here) in by_key
        }
    territories: dict[str, list[Result]] = {}
    for code in codes if with_territories else []:
        got = by_key.get((str(year), code))
        territories[code] = got if got is not None else computed(Period.year(year), code)
    return StoredReport(
        year=year,
        territory=territory,
        programme=programme,
        results=results,
        months=months,
        territories=territories,
        live=live,
        computed_at=oldest,
    )

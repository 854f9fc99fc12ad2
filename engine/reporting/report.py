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
from datetime import date

from sqlalchemy import delete, select

from engine.domain.clock import Clock
from engine.reporting.records import load_people, load_pools, load_referrals
from engine.store import models as m
from engine.store.db import Database, unit_of_work
from reporting.catalogue import compute_all
from reporting.formats import csv_rows, csv_text, render_text
from reporting.indicators import Result
from reporting.records import Period

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
) -> list[Result]:
    """Every indicator of ``year`` for the filters."""
    if not 2000 <= year <= 2100:
        raise ReportError(f"--year : année hors de portée ({year})")
    _known(db, territory, programme)
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
    return out


def write_snapshots(db: Database, *, year: int, clock: Clock) -> dict[str, int]:
    """Snapshot rows of ``year`` and its months, for the network and each territory.

    A closed period's rows are written once and kept; the open ones are replaced."""
    data = load(db)
    with unit_of_work(db) as session:
        territories: list[str | None] = [None, *session.scalars(select(m.Territory.code)).all()]
    written = kept = 0
    now = clock.now()
    for period, closed in _periods(year, clock.today()):
        for territory in territories:
            key = (period.label, territory or "")
            with unit_of_work(db, immediate=True) as session:
                T = m.IndicatorSnapshot
                where = (T.period == key[0], T.territory == key[1])
                if closed and session.scalar(select(T.id).where(*where).limit(1)) is not None:
                    kept += 1
                    continue
                session.execute(delete(T).where(*where))
                results = compute_all(
                    period,
                    people=data.people,
                    referrals=data.referrals,
                    pools=data.pools,
                    territory=territory,
                )
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

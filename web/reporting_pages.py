"""Impact and pilotage pages: the network's figures with charts, data tables, exports and the
printable annual report (and its PDF).

Why read snapshots: the reporting flow writes each period's figures once (counts only), so a
page answers in milliseconds instead of replaying a year of pathways; a period with no
snapshot yet is computed on the fly and the page says so. Every chart is server-rendered SVG
(`reporting.charts`) followed by its data table, and every table can be downloaded as CSV and
XLSX with exactly the numbers shown — counts and rates, never a person.

Scope: the national team sees the network, picks any territory and compares territories side
by side; a coordinator or a chargé·e sees their own territory only; everyone else gets the
same 404 as a page that does not exist (the project's rule for anything out of scope).
"""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from markupsafe import Markup
from sqlalchemy import select
from starlette.responses import Response

from engine.reporting.report import StoredReport, snapshot_years, stored_report
from engine.store import models as m
from engine.store.db import Database, unit_of_work
from reporting import charts, formats
from reporting.catalogue import PROGRAMMES
from reporting.indicators import Result
from reporting.operations import DOMAINS as OPERATION_DOMAINS
from reporting.operations import STATES as OPERATION_STATES
from web.pages import CallerDep
from web.render import fmt_datetime, render, templates
from web.security import Caller, OutOfScope

router = APIRouter(include_in_schema=False)

READERS = frozenset({"national_admin", "coordinator", "officer"})
NETWORK = "Tout le réseau"
SECTION_TITLES = {
    "cvg": "Convergence (CVG)",
    "phc": "Premières Heures en Chantier (PHC)",
    "operations": "Fonctionnement du réseau",
}
# The monthly series the Impact page draws: (programme, code, short name for a sheet).
IMPACT_SERIES = (
    ("cvg", "salaries_accompanied_2024", "accompagné·es"),
    ("cvg", "exit_to_employment_or_training", "sorties emploi"),
    ("cvg", "housing_access_among_hosted_at_entry", "accès logement"),
    ("phc", "salaries_accompanied_2024", "accompagné·es"),
    ("phc", "sheltered_or_housed_among_street_at_entry", "mise à l'abri"),
)
PILOTAGE_SERIES = (
    ("referrals_created", "créées"),
    ("triage_median_days", "qualification"),
    ("overdue_referrals", "en retard"),
)
OVERVIEW = (
    "referrals_created",
    "open_referrals",
    "overdue_referrals",
    "triage_median_days",
    "partner_answer_delay",
    "partner_acceptance",
    "pool_fill",
    "pool_held",
    "waitlist_median_days",
)
TERRITORY_COLUMNS = (
    "referrals_created",
    "open_referrals",
    "overdue_referrals",
    "triage_median_days",
    "partner_answer_delay",
    "partner_acceptance",
    "pool_fill",
)
CHART_ITEMS = 15  # bars drawn at most; the table below a chart always has every row
CHART_LABEL = 34  # characters of a bar's label (the table gives the full name)

CHROMIUM = "/usr/bin/chromium"
PDF_TIMEOUT_SECONDS = 60.0
_pdf_slots = threading.BoundedSemaphore(2)  # Chromium is heavy: two PDFs at a time at most


class BadParameter(Exception):
    """A query parameter that cannot be understood: a French 422 page."""


class PdfUnavailable(Exception):
    """The PDF could not be made (no Chromium, timeout, failure): French message, status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# --- what the caller may see ---------------------------------------------------------------


@dataclass(frozen=True)
class View:
    """The year, territory and programme asked, once checked against the caller's scope."""

    year: int
    territory: str | None  # None: the whole network
    territory_name: str
    programme: str | None
    national: bool  # may pick any territory and compare them side by side
    choices: list[tuple[str, str]]  # (code, name) the caller may pick
    years: list[int]
    names: dict[str, str]  # territory code -> name

    def params(self, **extra: str) -> dict[str, str]:
        out = {"annee": str(self.year)}
        if self.national and self.territory:
            out["territoire"] = self.territory
        if self.programme:
            out["programme"] = self.programme
        out.update({k: v for k, v in extra.items() if v})
        return out

    def query(self, **extra: str) -> str:
        return urlencode(self.params(**extra))

    def file_name(self, page: str, ext: str, table: str | None = None) -> str:
        where = self.territory or "reseau"
        parts = [page, str(self.year), where, self.programme or "", table or ""]
        name = "-".join(p for p in parts if p)
        return re.sub(r"[^a-z0-9-]", "-", name.lower()) + f".{ext}"


def _param(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    return value.strip()


def _short(text: str) -> str:
    return text if len(text) <= 20 else text[:20] + "…"


def _year(raw: str | None, years: list[int], today_year: int) -> int:
    if raw is None or raw == "":
        return next((y for y in years if y <= today_year), today_year)
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4):
        raise BadParameter(
            f"Année invalide : « {_short(raw)} ». Indiquez une année sur quatre chiffres, "
            "par exemple 2024."
        )
    year = int(raw)
    if not 2000 <= year <= today_year:
        raise BadParameter(f"Année hors de portée : {year} (attendu : entre 2000 et {today_year}).")
    return year


def _view(request: Request, caller: Caller) -> View:
    user = caller.user
    if user.role not in READERS or not user.active:
        raise OutOfScope()
    national = user.role == "national_admin"
    if not national and user.territory_id is None:
        raise OutOfScope()  # the national PHC queue has no territory to report on
    db: Database = request.app.state.db
    today = request.app.state.clock.today()
    with unit_of_work(db) as session:
        territories = list(
            session.execute(
                select(m.Territory.id, m.Territory.code, m.Territory.name).order_by(
                    m.Territory.name
                )
            )
        )
    names = {code: name for _, code, name in territories}
    programme = _param(request, "programme") or None
    if programme is not None and programme not in PROGRAMMES:
        raise BadParameter(f"Programme inconnu : « {_short(programme)} » (attendu : cvg ou phc).")
    asked = _param(request, "territoire") or None
    if national:
        if asked is not None and asked not in names:
            raise OutOfScope()
        territory = asked
        choices = [(code, name) for _, code, name in territories]
    else:
        own = next(code for tid, code, _ in territories if tid == user.territory_id)
        if asked is not None and asked != own:
            raise OutOfScope()
        territory = own
        choices = [(own, names[own])]
    stored = snapshot_years(db)
    year = _year(_param(request, "annee"), stored, today.year)
    years = sorted({y for y in stored if 2000 <= y <= today.year} | {today.year, year})
    return View(
        year=year,
        territory=territory,
        territory_name=names[territory] if territory else NETWORK,
        programme=programme,
        national=national,
        choices=choices,
        years=sorted(years, reverse=True),
        names=names,
    )


def _report(request: Request, view: View, *, territories: bool) -> StoredReport:
    return stored_report(
        request.app.state.db,
        year=view.year,
        today=request.app.state.clock.today(),
        territory=view.territory,
        programme=view.programme,
        with_territories=territories and view.national and view.territory is None,
    )


# --- tables, tiles and charts ----------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """A value as exported (machine value) and as shown (French text)."""

    value: float | int | str | None
    kind: str = "text"  # text | count | rate | difference | median_days | ratio

    @property
    def text(self) -> str:
        v = self.value
        if v is None:
            return "—"
        if self.kind == "text":
            return str(v)
        if self.kind == "ratio":
            return formats.ratio(float(v))
        return formats.value_text(self.kind, float(v))

    @property
    def numeric(self) -> bool:
        return self.kind != "text"

    @property
    def machine(self) -> float | int | str | None:
        """The exported value: counts as integers, rates as fractions, days as decimals."""
        v = self.value
        if isinstance(v, float) and self.kind == "count" and v.is_integer():
            return int(v)
        return v


@dataclass(frozen=True)
class Table:
    slug: str
    title: str
    sheet: str  # XLSX sheet name (31 characters at most)
    header: tuple[str, ...]
    rows: Sequence[tuple[Cell, ...]]
    note: str = ""


@dataclass(frozen=True)
class Block:
    """A chart (or none) and the table that gives its data."""

    heading: str
    table: Table
    svg: Markup | None = None
    note: str = ""


@dataclass(frozen=True)
class Tile:
    label: str
    value: str
    detail: str
    definition: str
    note: str
    groups: list[tuple[str, str, str, str]] = field(default_factory=list)  # label, rate, n, of
    ratio: str = ""
    difference: bool = False


@dataclass(frozen=True)
class Section:
    slug: str
    title: str
    tiles: list[Tile]
    blocks: list[Block]


def cut_label(label: str) -> str:
    return label if len(label) <= CHART_LABEL else label[: CHART_LABEL - 1].rstrip() + "…"


def _value_cell(r: Result | None) -> Cell:
    if r is None:
        return Cell(None)
    return Cell(r.value, r.kind)


def _tile(r: Result) -> Tile:
    value = formats.value_text(r.kind, r.value)
    detail = ""
    if r.value is not None and r.kind == "rate" and r.denominator is not None:
        detail = f"{formats.number(r.numerator or 0)} sur {formats.number(r.denominator)}"
    elif r.value is not None and r.kind in ("median_days", "count") and r.denominator:
        detail = f"sur {formats.number(r.denominator)}"
    groups = [
        (
            g.label,
            formats.percent(g.rate) if g.rate is not None else formats.NOT_COMPUTABLE,
            formats.number(g.numerator),
            formats.number(g.denominator),
        )
        for g in r.groups
    ]
    ratio = ""
    if r.kind == "difference" and r.value is not None:
        ratio = formats.ratio(r.ratio) if r.ratio is not None else "rapport non calculable"
    return Tile(
        label=r.label,
        value=value,
        detail=detail,
        definition=r.definition,
        note=r.note or "",
        groups=groups,
        ratio=ratio,
        difference=r.kind == "difference",
    )


def _figures_table(slug: str, title: str, sheet: str, results: Sequence[Result]) -> Table:
    rows = [
        (
            Cell(r.label),
            _value_cell(r),
            Cell(r.numerator, "count"),
            Cell(r.denominator, "count"),
            Cell(r.note or ""),
        )
        for r in results
    ]
    header = ("Indicateur", "Valeur", "Numérateur", "Dénominateur", "Remarque")
    return Table(slug, title, sheet, header, rows)


def _comparisons_table(slug: str, title: str, sheet: str, results: Sequence[Result]) -> Table:
    rows = []
    for r in results:
        a = r.groups[0] if r.groups else None
        b = r.groups[1] if len(r.groups) > 1 else None
        rows.append(
            (
                Cell(r.label),
                Cell(a.rate if a else None, "rate"),
                Cell(a.numerator if a else None, "count"),
                Cell(a.denominator if a else None, "count"),
                Cell(b.rate if b else None, "rate"),
                Cell(b.numerator if b else None, "count"),
                Cell(b.denominator if b else None, "count"),
                Cell(r.value, "difference"),
                Cell(r.ratio, "ratio"),
            )
        )
    header = (
        "Indicateur",
        "Taux avec chargé·e mobilisé·e",
        "Personnes concernées (avec)",
        "Effectif du groupe (avec)",
        "Taux sans chargé·e mobilisé·e",
        "Personnes concernées (sans)",
        "Effectif du groupe (sans)",
        "Écart (points)",
        "Rapport des taux",
    )
    return Table(slug, title, sheet, header, rows)


def _series_block(slug: str, sheet: str, results: list[Result], year: int) -> Block:
    title = f"{results[0].label} — par mois ({year})" if results else "Par mois"
    table = Table(
        slug,
        title,
        sheet,
        ("Mois", "Valeur", "Numérateur", "Dénominateur"),
        [
            (
                Cell(formats.month_label(r.period)),
                _value_cell(r),
                Cell(r.numerator, "count"),
                Cell(r.denominator, "count"),
            )
            for r in results
        ],
    )
    return Block(title, table, Markup(charts.series_chart(title, results)))


def _by_key(results: Iterable[Result]) -> dict[str, Result]:
    return {r.key: r for r in results}


def _territory_rows(
    report: StoredReport, view: View, keys: Sequence[str]
) -> list[tuple[str, dict[str, Result]]]:
    rows = [(view.names.get(code, code), _by_key(rs)) for code, rs in report.territories.items()]
    return sorted(rows, key=lambda row: row[0])


def _territory_table(
    slug: str,
    title: str,
    sheet: str,
    report: StoredReport,
    view: View,
    keys: Sequence[str],
    labels: Sequence[str],
) -> Table:
    rows = [
        (Cell(name), *(_value_cell(found.get(k)) for k in keys))
        for name, found in _territory_rows(report, view, keys)
    ]
    note = "« — » : non calculable, personne dans la population de l'indicateur pour ce territoire."
    return Table(slug, title, sheet, ("Territoire", *labels), rows, note=note)


def _comparison_svg(title: str, results: Sequence[Result]) -> str:
    """Both groups' rates per comparison, labelled by the outcome ("Accès au logement"): the
    full label is in the table below, and would not fit beside the bars."""
    return charts.bar_chart(
        title,
        [cut_label(r.label.split(" quand ")[0]) for r in results],
        [r.groups[0].rate if r.groups else None for r in results],
        kind="rate",
        second=[r.groups[1].rate if len(r.groups) > 1 else None for r in results],
    )


def impact_sections(report: StoredReport, view: View) -> list[Section]:
    """The Impact page: per programme, tiles, a chart of its rates, the comparisons, monthly
    series, and (national team, network view) the territories side by side."""
    out = []
    year = view.year
    for programme in ("cvg", "phc"):
        if view.programme not in (None, programme):
            continue
        results = [r for r in report.results if r.section == programme]
        short = programme.upper()
        title = SECTION_TITLES[programme]
        rates = [r for r in results if r.kind == "rate"]
        blocks = [
            Block(
                f"Chiffres {year}",
                _figures_table(
                    f"chiffres-{programme}",
                    f"{title} — chiffres {year}",
                    f"Chiffres {short}",
                    results,
                ),
                Markup(
                    charts.bar_chart(
                        f"{title} — taux {year}",
                        [cut_label(r.label) for r in rates],
                        [r.value for r in rates],
                        kind="rate",
                    )
                ),
            )
        ]
        comparisons = [r for r in results if r.kind == "difference"]
        if comparisons:
            blocks.append(
                Block(
                    "Chargé·e de partenariat mobilisé·e ou non",
                    _comparisons_table(
                        f"comparaisons-{programme}",
                        f"{title} — comparaisons chargé·e mobilisé·e / non mobilisé·e {year}",
                        f"Comparaisons {short}",
                        comparisons,
                    ),
                    Markup(
                        _comparison_svg(
                            f"{title} — chargé·e mobilisé·e ou non, {year}", comparisons
                        )
                    ),
                    note=comparisons[0].definition.split(". ", 1)[-1],
                )
            )
        for k, (p, code, name) in enumerate(IMPACT_SERIES):
            series = report.series(f"{p}/{code}")
            if p == programme and series:
                blocks.append(
                    _series_block(
                        f"mensuel-{programme}-{k + 1}", f"Mois {short} {name}", series, year
                    )
                )
        if report.territories:
            keys = [r.key for r in results]
            table = _territory_table(
                f"territoires-{programme}",
                f"{title} — par territoire, {year}",
                f"Territoires {short}",
                report,
                view,
                keys,
                [r.label for r in results],
            )
            first = results[0] if results else None
            chart = None
            if first is not None:
                rows = _territory_rows(report, view, keys)
                chart = Markup(
                    charts.bar_chart(
                        f"{title} — {first.label.lower()} par territoire, {year}",
                        [cut_label(name.removeprefix("Convergence ")) for name, _ in rows],
                        [
                            found[first.key].value if first.key in found else None
                            for _, found in rows
                        ],
                        kind=first.kind,
                    )
                )
            blocks.append(Block("Par territoire", table, chart))
        out.append(Section(programme, title, [_tile(r) for r in results], blocks))
    return out


@dataclass(frozen=True)
class Names:
    """Display names of what the operational figures are broken down by (organisations and
    counted pools, never people)."""

    partners: dict[str, str]
    offers: dict[str, tuple[str, str]]  # offer code -> (offer name, partner name)
    pools: dict[str, str]


def _names(db: Database) -> Names:
    with unit_of_work(db) as session:
        partners = dict(session.execute(select(m.Partner.code, m.Partner.name)).tuples().all())
        offers = {
            code: (name, partner)
            for code, name, partner in session.execute(
                select(m.Offer.code, m.Offer.name, m.Partner.name).join(m.Partner)
            ).tuples()
        }
        pools = dict(session.execute(select(m.SlotPool.code, m.SlotPool.name)).tuples().all())
    return Names(partners, offers, pools)


def _family(results: Iterable[Result], family: str) -> dict[str, Result]:
    prefix = family + "."
    return {r.code[len(prefix) :]: r for r in results if r.code.startswith(prefix)}


def _count_block(
    slug: str, title: str, sheet: str, heading: str, labels: list[str], found: list[Result]
) -> Block:
    table = Table(
        slug,
        title,
        sheet,
        (heading, "Orientations créées"),
        [(Cell(label), _value_cell(r)) for label, r in zip(labels, found, strict=True)],
    )
    svg = charts.bar_chart(title, labels, [r.value for r in found], kind="count")
    return Block(title, table, Markup(svg))


def _top(rows: list[tuple[str, Result | None]], weight: Callable[[Result], float]) -> list:
    present = [(label, r) for label, r in rows if r is not None]
    return sorted(present, key=lambda row: -weight(row[1]))[:CHART_ITEMS]


def pilotage_sections(report: StoredReport, view: View, names: Names) -> list[Section]:
    """The Pilotage page: overview, referrals by state and domain, partners, offers, pools,
    monthly series and (national team, network view) territories side by side."""
    year = view.year
    ops = [r for r in report.results if r.section == "operations"]
    static = {r.code: r for r in ops if "." not in r.code}
    overview = [static[c] for c in OVERVIEW if c in static]
    sections = [
        Section(
            "ensemble",
            f"Vue d'ensemble {year}",
            [_tile(r) for r in overview],
            [
                Block(
                    "Chiffres de l'année",
                    _figures_table(
                        "ensemble",
                        f"Fonctionnement du réseau — chiffres {year}",
                        "Ensemble",
                        overview,
                    ),
                )
            ],
        )
    ]
    states = _family(ops, "referrals_by_state")
    domains = _family(ops, "referrals_by_domain")
    blocks = [
        _count_block(
            "etats",
            f"Orientations créées en {year}, par état actuel",
            "Par état",
            "État",
            [OPERATION_STATES.get(k, k) for k in states],
            list(states.values()),
        ),
        _count_block(
            "domaines",
            f"Orientations créées en {year}, par domaine",
            "Par domaine",
            "Domaine",
            [OPERATION_DOMAINS.get(k, k).capitalize() for k in domains],
            list(domains.values()),
        ),
    ]
    for k, (code, name) in enumerate(PILOTAGE_SERIES):
        series = report.series(code)
        if series:
            blocks.append(_series_block(f"mensuel-{k + 1}", f"Mois {name}", series, year))
    sections.append(Section("orientations", "Orientations", [], blocks))

    acceptance = _family(ops, "partner_acceptance")
    delay = _family(ops, "partner_answer_delay")
    partner_rows = [
        (names.partners.get(code, code), acceptance.get(code), delay.get(code))
        for code in sorted(set(acceptance) | set(delay), key=lambda c: names.partners.get(c, c))
    ]
    partner_table = Table(
        "partenaires",
        f"Réponses des partenaires en {year}",
        "Partenaires",
        ("Partenaire", "Taux d'acceptation", "Acceptations", "Réponses", "Délai médian de réponse"),
        [
            (
                Cell(name),
                _value_cell(acc),
                Cell(acc.numerator if acc else None, "count"),
                Cell(acc.denominator if acc else None, "count"),
                _value_cell(dl),
            )
            for name, acc, dl in partner_rows
        ],
    )
    top = _top([(name, acc) for name, acc, _ in partner_rows], lambda r: r.denominator or 0)
    partner_svg = charts.bar_chart(
        f"Taux d'acceptation des partenaires en {year}",
        [cut_label(label) for label, _ in top],
        [r.value for _, r in top],
        kind="rate",
    )
    offer_acceptance = _family(ops, "offer_acceptance")
    offer_delay = _family(ops, "offer_answer_delay")
    offer_table = Table(
        "offres",
        f"Réponses par offre en {year}",
        "Offres",
        (
            "Offre",
            "Partenaire",
            "Taux d'acceptation",
            "Acceptations",
            "Réponses",
            "Délai médian de réponse",
        ),
        [
            (
                Cell(names.offers.get(code, (code, ""))[0]),
                Cell(names.offers.get(code, (code, ""))[1]),
                _value_cell(offer_acceptance.get(code)),
                Cell(
                    offer_acceptance[code].numerator if code in offer_acceptance else None, "count"
                ),
                Cell(
                    offer_acceptance[code].denominator if code in offer_acceptance else None,
                    "count",
                ),
                _value_cell(offer_delay.get(code)),
            )
            for code in sorted(set(offer_acceptance) | set(offer_delay))
        ],
    )
    sections.append(
        Section(
            "partenaires",
            "Partenaires et offres",
            [],
            [
                Block(
                    "Partenaires",
                    partner_table,
                    Markup(partner_svg),
                    note=(
                        f"Le graphique montre les {CHART_ITEMS} partenaires ayant le plus "
                        "répondu ; le tableau les donne tous."
                        if len(partner_rows) > CHART_ITEMS
                        else ""
                    ),
                ),
                Block("Offres", offer_table),
            ],
        )
    )

    fill = _family(ops, "pool_fill")
    held = _family(ops, "pool_held")
    waiting = _family(ops, "pool_waiting")
    wait_delay = _family(ops, "waitlist_median_days")
    pool_codes = sorted(set(fill) | set(waiting), key=lambda c: names.pools.get(c, c))
    pool_table = Table(
        "contingents",
        f"Contingents de places en {year}",
        "Contingents",
        (
            "Contingent",
            "Remplissage",
            "Places attribuées ou proposées",
            "Capacité",
            "Places attribuées",
            "En attente",
            "Délai médian d'attente",
        ),
        [
            (
                Cell(names.pools.get(code, code)),
                _value_cell(fill.get(code)),
                Cell(fill[code].numerator if code in fill else None, "count"),
                Cell(fill[code].denominator if code in fill else None, "count"),
                _value_cell(held.get(code)),
                _value_cell(waiting.get(code)),
                _value_cell(wait_delay.get(code)),
            )
            for code in pool_codes
        ],
    )
    top_pools = _top(
        [(names.pools.get(c, c), fill.get(c)) for c in pool_codes], lambda r: r.denominator or 0
    )
    pool_svg = charts.bar_chart(
        f"Remplissage des contingents en {year}",
        [cut_label(label) for label, _ in top_pools],
        [r.value for _, r in top_pools],
        kind="rate",
    )
    sections.append(
        Section(
            "contingents",
            "Contingents de places",
            [],
            [
                Block(
                    "Remplissage et attente",
                    pool_table,
                    Markup(pool_svg),
                    note=(
                        f"Le graphique montre les {CHART_ITEMS} plus grands contingents ; "
                        "le tableau les donne tous."
                        if len(pool_codes) > CHART_ITEMS
                        else ""
                    ),
                )
            ],
        )
    )
    if report.territories:
        labels = [static[c].label if c in static else c for c in TERRITORY_COLUMNS]
        table = _territory_table(
            "territoires",
            f"Fonctionnement par territoire en {year}",
            "Territoires",
            report,
            view,
            TERRITORY_COLUMNS,
            labels,
        )
        rows = _territory_rows(report, view, TERRITORY_COLUMNS)
        svg = charts.bar_chart(
            f"Orientations créées par territoire en {year}",
            [cut_label(name.removeprefix("Convergence ")) for name, _ in rows],
            [
                found["referrals_created"].value if "referrals_created" in found else None
                for _, found in rows
            ],
            kind="count",
        )
        sections.append(
            Section(
                "territoires",
                "Territoires côte à côte",
                [],
                [Block("Par territoire", table, Markup(svg))],
            )
        )
    return sections


def _tables(sections: Iterable[Section]) -> list[Table]:
    return [b.table for s in sections for b in s.blocks]


# --- exports -------------------------------------------------------------------------------


def tables_csv(table: Table) -> bytes:
    """One table: French header, machine values (dot decimals, rates as fractions), UTF-8."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(table.header)
    for row in table.rows:
        writer.writerow(["" if c.machine is None else c.machine for c in row])
    return out.getvalue().encode()


_XLSX_FORMATS = {
    "rate": "0.0%",
    "difference": "+0.0%;-0.0%;0.0%",
    "median_days": "0.0",
    "ratio": "0.00",
}


def _sheet_title(title: str, used: set[str]) -> str:
    base = re.sub(r"[\\/?*\[\]:]", " ", title).strip()[:31] or "Tableau"
    name, n = base, 2
    while name.lower() in used:
        suffix = f" {n}"
        name, n = base[: 31 - len(suffix)] + suffix, n + 1
    used.add(name.lower())
    return name


def tables_xlsx(tables: Sequence[Table], about: Sequence[tuple[str, str]]) -> bytes:
    """Every table on its own sheet (numbers as numbers, rates formatted as percentages),
    then an "À propos" sheet saying what the figures are and where they come from."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    used: set[str] = set()
    first = True
    for table in tables:
        sheet = book.active if first else book.create_sheet()
        first = False
        sheet.title = _sheet_title(table.sheet, used)
        sheet.append(list(table.header))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in table.rows:
            sheet.append([c.machine for c in row])
            for target, c in zip(sheet[sheet.max_row], row, strict=True):
                if c.kind in _XLSX_FORMATS and c.value is not None:
                    target.number_format = _XLSX_FORMATS[c.kind]
        for k, title in enumerate(table.header):
            width = max([len(title), *(len(r[k].text) for r in table.rows)], default=10)
            sheet.column_dimensions[sheet.cell(1, k + 1).column_letter].width = min(60, width + 2)
    info = book.active if first else book.create_sheet()
    info.title = _sheet_title("À propos", used)
    for key, value in about:
        info.append([key, value])
    info.column_dimensions["A"].width = 28
    info.column_dimensions["B"].width = 90
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _about(page: str, view: View, report: StoredReport) -> list[tuple[str, str]]:
    source = (
        "Calculé à la volée, pas encore d'instantané pour une partie des chiffres"
        if report.live
        else f"Instantanés d'indicateurs du {fmt_datetime(report.computed_at)}"
    )
    return [
        ("Document", f"{page} — Aiguillage, réseau Convergence France"),
        ("Année", str(view.year)),
        ("Territoire", view.territory_name),
        ("Programme", SECTION_TITLES.get(view.programme or "", "Les deux programmes")),
        ("Source", source),
        (
            "Données",
            "Effectifs et taux uniquement : aucune personne n'apparaît dans ce fichier. "
            "Les taux sont des fractions (0,47 = 47 %), les écarts des différences de taux.",
        ),
    ]


def _download(body: bytes, media_type: str, file_name: str) -> Response:
    return Response(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": (
                f"attachment; filename=\"{file_name}\"; filename*=UTF-8''{quote(file_name)}"
            ),
            "Cache-Control": "no-store",
        },
    )


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _export(
    request: Request,
    view: View,
    page: str,
    title: str,
    tables: list[Table],
    ext: str,
    report: StoredReport,
) -> Response:
    if ext == "xlsx":
        body = tables_xlsx(tables, _about(title, view, report))
        return _download(body, XLSX_TYPE, view.file_name(page, "xlsx"))
    slug = _param(request, "tableau") or tables[0].slug
    table = next((t for t in tables if t.slug == slug), None)
    if table is None:
        raise OutOfScope()
    return _download(
        tables_csv(table), "text/csv; charset=utf-8", view.file_name(page, "csv", slug)
    )


# --- pages ---------------------------------------------------------------------------------


def _bad(request: Request, caller: Caller, exc: BadParameter) -> Response:
    return render(
        request,
        "error.html",
        {"caller": caller, "title": "Paramètre refusé", "message": str(exc)},
        status=422,
    )


def _common(view: View, report: StoredReport, base: str) -> dict[str, Any]:
    return {
        "view": view,
        "report": report,
        "base": base,
        "programmes": SECTION_TITLES,
        "computed_at": fmt_datetime(report.computed_at) if report.computed_at else "",
    }


@router.get("/impact")
def impact_page(request: Request, caller: CallerDep) -> Response:
    try:
        view = _view(request, caller)
    except BadParameter as exc:
        return _bad(request, caller, exc)
    report = _report(request, view, territories=True)
    sections = impact_sections(report, view)
    context = {"caller": caller, "sections": sections, **_common(view, report, "/impact")}
    return render(request, "impact.html", context)


@router.get("/impact/export.{ext}")
def impact_export(request: Request, caller: CallerDep, ext: str) -> Response:
    if ext not in ("csv", "xlsx"):
        raise OutOfScope()
    try:
        view = _view(request, caller)
    except BadParameter as exc:
        return _bad(request, caller, exc)
    report = _report(request, view, territories=True)
    tables = _tables(impact_sections(report, view))
    return _export(request, view, "impact", "Impact des programmes", tables, ext, report)


@router.get("/pilotage")
def pilotage_page(request: Request, caller: CallerDep) -> Response:
    try:
        view = _view(request, caller)
    except BadParameter as exc:
        return _bad(request, caller, exc)
    report = _report(request, view, territories=True)
    sections = pilotage_sections(report, view, _names(request.app.state.db))
    context = {"caller": caller, "sections": sections, **_common(view, report, "/pilotage")}
    return render(request, "pilotage.html", context)


@router.get("/pilotage/export.{ext}")
def pilotage_export(request: Request, caller: CallerDep, ext: str) -> Response:
    if ext not in ("csv", "xlsx"):
        raise OutOfScope()
    try:
        view = _view(request, caller)
    except BadParameter as exc:
        return _bad(request, caller, exc)
    report = _report(request, view, territories=True)
    tables = _tables(pilotage_sections(report, view, _names(request.app.state.db)))
    return _export(request, view, "pilotage", "Pilotage du réseau", tables, ext, report)


# --- the annual report, printable and as PDF -------------------------------------------------


def _annual_context(request: Request, caller: Caller, view: View) -> dict[str, Any]:
    report = _report(request, view, territories=False)
    sections = impact_sections(report, view)
    ops = [r for r in report.results if r.section == "operations"]
    static = {r.code: r for r in ops if "." not in r.code}
    overview = [static[c] for c in OVERVIEW if c in static]
    return {
        "caller": caller,
        "sections": sections,
        "overview": _figures_table(
            "ensemble", f"Fonctionnement du réseau — chiffres {view.year}", "Ensemble", overview
        ),
        "overview_tiles": [_tile(r) for r in overview],
        **_common(view, report, "/impact/rapport-annuel"),
    }


@router.get("/impact/rapport-annuel")
def annual_report_page(request: Request, caller: CallerDep) -> Response:
    try:
        view = _view(request, caller)
    except BadParameter as exc:
        return _bad(request, caller, exc)
    context = _annual_context(request, caller, view)
    return render(request, "rapport_annuel.html", {**context, "inline_css": None})


def html_to_pdf(
    html: str, *, chromium: str = CHROMIUM, timeout: float = PDF_TIMEOUT_SECONDS
) -> bytes:
    """The page printed by Debian's Chromium, headless, from a file in a private temporary
    directory: no server, no cookie and no network involved (every style and chart is inline),
    and a process group killed whole when it outlives ``timeout``."""
    binary = chromium if os.path.isfile(chromium) else None
    if binary is None or not os.access(binary, os.X_OK):
        raise PdfUnavailable(
            503,
            "Le PDF ne peut pas être fabriqué : Chromium est introuvable sur le serveur. "
            "Utilisez la version imprimable (Imprimer, puis « Enregistrer au format PDF »).",
        )
    if not _pdf_slots.acquire(timeout=5):
        raise PdfUnavailable(
            503, "Trop de rapports PDF sont en cours de fabrication : réessayez dans une minute."
        )
    try:
        with tempfile.TemporaryDirectory(prefix="aiguillage-pdf-") as tmp:
            source = Path(tmp) / "rapport.html"
            target = Path(tmp) / "rapport.pdf"
            source.write_text(html, encoding="utf-8")
            command = [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--host-resolver-rules=MAP * ~NOTFOUND",
                f"--user-data-dir={Path(tmp) / 'profil'}",
                "--no-pdf-header-footer",
                f"--print-to-pdf={target}",
                source.as_uri(),
            ]
            env = {
                "HOME": tmp,
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "LANG": "fr_FR.UTF-8",
            }
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                cwd=tmp,
                start_new_session=True,
            )
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                raise PdfUnavailable(
                    504,
                    "Le PDF n'a pas pu être fabriqué à temps : réessayez, ou utilisez la version "
                    "imprimable (Imprimer, puis « Enregistrer au format PDF »).",
                ) from None
            if not target.exists() or target.stat().st_size == 0:
                raise PdfUnavailable(
                    503,
                    "Le PDF n'a pas pu être fabriqué : utilisez la version imprimable "
                    "(Imprimer, puis « Enregistrer au format PDF »).",
                )
            return target.read_bytes()
    finally:
        _pdf_slots.release()


STYLE = Path(__file__).parent / "static" / "style.css"


@router.get("/impact/rapport-annuel.pdf")
def annual_report_pdf(request: Request, caller: CallerDep) -> Response:
    try:
        view = _view(request, caller)
    except BadParameter as exc:
        return _bad(request, caller, exc)
    context = _annual_context(request, caller, view)
    css = STYLE.read_text(encoding="utf-8")
    html = templates.get_template("rapport_annuel.html").render(
        {**context, "inline_css": Markup(css.replace("</", "<\\/")), "path": request.url.path}
    )
    try:
        body = html_to_pdf(html, chromium=CHROMIUM, timeout=PDF_TIMEOUT_SECONDS)
    except PdfUnavailable as exc:
        return render(
            request,
            "error.html",
            {"caller": caller, "title": "PDF indisponible", "message": str(exc)},
            status=exc.status,
        )
    return _download(body, "application/pdf", view.file_name("rapport-annuel", "pdf"))

"""French number formatting and the text and CSV renderings of indicator results.

Why: the people who read these figures are French social workers and funders; "47 %" with
a decimal comma and a narrow no-break space is what they expect, in the terminal, on the
pages and in the charts alike. Rounding goes through Decimal (half up) so 28.5 % shows as
29 % the way a person rounding by hand would, whatever the float underneath. The CSV keeps
machine values (dot decimals, empty for "non calculable") so spreadsheets and scripts can
compare them with the published figures.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reporting.indicators import Result

NNBSP = "\u202f"  # narrow no-break space: thousands separator and before "%"
MINUS = "\u2212"
NOT_COMPUTABLE = "non calculable"

CSV_COLUMNS = (
    "code",
    "programme",
    "label",
    "value",
    "numerator",
    "denominator",
    "period",
    "territory",
)

SECTION_TITLES = {
    "cvg": "Convergence (CVG)",
    "phc": "Premières Heures en Chantier (PHC)",
    "operations": "Fonctionnement du réseau",
}

_MONTHS = (
    "janv.",
    "févr.",
    "mars",
    "avr.",
    "mai",
    "juin",
    "juil.",
    "août",
    "sept.",
    "oct.",
    "nov.",
    "déc.",
)


def _rounded(x: float | Decimal, digits: int) -> Decimal:
    exact = x if isinstance(x, Decimal) else Decimal(repr(x))
    return exact.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


def number(x: float | Decimal, digits: int = 0) -> str:
    """4550 → "4 550"; 1234.56 with one digit → "1 234,6" (narrow no-break spaces)."""
    d = _rounded(x, digits)
    sign = MINUS if d < 0 else ""
    whole, _, frac = f"{abs(d):f}".partition(".")
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    text = NNBSP.join(groups)
    return f"{sign}{text},{frac}" if frac else f"{sign}{text}"


def percent(fraction: float, digits: int = 0) -> str:
    """0.47 → "47 %"; 0.4725 with one digit → "47,3 %"."""
    return f"{number(Decimal(repr(fraction)) * 100, digits)}{NNBSP}%"


def points(difference: float, digits: int = 0) -> str:
    """A difference of two rates, in percentage points, always signed: 0.15 → "+15 pts"."""
    text = number(Decimal(repr(difference)) * 100, digits)
    return f"{text if text.startswith(MINUS) else '+' + text}{NNBSP}pts"


def ratio(r: float) -> str:
    """How many times the other group's rate: 1.5 → "× 1,5"."""
    return f"×{NNBSP}{number(r, 2 if r < 10 else 1)}"


def days(d: float) -> str:
    """A duration in days, one decimal: 2.5 → "2,5 jours"; 1 → "1 jour"."""
    text = number(d, 1).removesuffix(",0")
    return f"{text}{NNBSP}{'jour' if abs(d) < 2 else 'jours'}"


def month_label(period_label: str) -> str:
    """ "2024-03" → "mars 2024"; other labels are returned unchanged."""
    year, sep, month = period_label.partition("-")
    if sep and year.isdigit() and month.isdigit() and 1 <= int(month) <= 12:
        return f"{_MONTHS[int(month) - 1]} {year}"
    return period_label


def value_text(kind: str, value: float | None) -> str:
    """A value of the given kind, in French; "non calculable" for None."""
    if value is None:
        return NOT_COMPUTABLE
    if kind == "rate":
        return percent(value)
    if kind == "difference":
        return points(value)
    if kind == "median_days":
        return days(value)
    return number(value)


def display(result: Result) -> str:
    """The figure as shown beside its label: value, then what it is made of."""
    if result.value is None:
        return f"{NOT_COMPUTABLE} : {result.note}" if result.note else NOT_COMPUTABLE
    text = value_text(result.kind, result.value)
    if result.kind == "rate" and result.denominator is not None:
        text += f" ({number(result.numerator or 0)} sur {number(result.denominator)})"
    elif result.kind in ("median_days", "count") and result.denominator is not None:
        text += f" (sur {number(result.denominator)})"
    elif result.kind == "difference":
        text += (
            f", {ratio(result.ratio)}" if result.ratio is not None else ", rapport non calculable"
        )
    return text


def render_text(results: Sequence[Result], *, definitions: bool = False) -> str:
    """The terminal rendering of `aiguillage report --format text`: one block per programme."""
    lines: list[str] = []
    current: tuple[str, str, str | None] | None = None
    for r in results:
        if (r.section, r.period, r.territory) != current:
            current = (r.section, r.period, r.territory)
            if lines:
                lines.append("")
            where = f"territoire {r.territory}" if r.territory else "tout le réseau"
            lines.append(f"{SECTION_TITLES.get(r.section, r.section)} — {r.period} — {where}")
        lines.append(f"  {r.label} : {display(r)}")
        for g in r.groups:
            rate = percent(g.rate) if g.rate is not None else NOT_COMPUTABLE
            lines.append(
                f"      {g.label} : {rate} ({number(g.numerator)} sur {number(g.denominator)})"
            )
        if definitions:
            lines.append(f"      {r.definition}")
    return "\n".join(lines) + "\n" if lines else ""


def _csv_cell(v: object) -> str:
    return "" if v is None else str(v)


def csv_rows(results: Sequence[Result]) -> list[list[str]]:
    """Header (the JSON keys) then one row per result, machine values."""
    rows = [list(CSV_COLUMNS)]
    for r in results:
        d = r.as_dict()
        rows.append([_csv_cell(d[k]) for k in CSV_COLUMNS])
    return rows


def csv_text(results: Sequence[Result]) -> str:
    """The CSV document (csv module, default dialect) of `aiguillage report --format csv`."""
    out = io.StringIO()
    csv.writer(out).writerows(csv_rows(results))
    return out.getvalue()

"""Small SVG charts rendered on the server, with the table that says the same thing.

Why: the pages work without JavaScript and must be accessible (RGAA): a chart is an image
with a French title and an `aria-label` that reads its values, and every chart comes with
its data table. Plain strings keep reporting free of any drawing library. Values use the
French formatting of `reporting.formats`; a missing value draws no bar and reads
"non calculable".
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

from reporting.formats import month_label, value_text
from reporting.indicators import Kind, Result

WIDTH = 640
LABEL_WIDTH = 250
BAR_SPACE = 300
COLOURS = ("#1f4e79", "#9dc3e6")
MOBILISED_SERIES = ("Chargé·e mobilisé·e", "Sans chargé·e mobilisé·e")

Values = Sequence[float | None]


def _attr(text: str) -> str:
    return escape(text, {'"': "&quot;"})


def _svg(title: str, summary: str, height: int, body: list[str]) -> str:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-label="{_attr(summary)}" '
        'font-family="sans-serif" font-size="13">'
    )
    return "\n".join([head, f"<title>{escape(title)}</title>", *body, "</svg>"]) + "\n"


def _scale(kind: Kind, values: Sequence[float | None]) -> float:
    present = [v for v in values if v is not None and v > 0]
    top = max(present, default=0.0)
    return max(top, 1.0) if kind == "rate" else top or 1.0


def _summary(
    title: str,
    labels: Sequence[str],
    values: Values,
    kind: Kind,
    second: Values | None,
    series: tuple[str, str],
) -> str:
    parts = []
    for i, label in enumerate(labels):
        if second is None:
            parts.append(f"{label} : {value_text(kind, values[i])}")
        else:
            parts.append(
                f"{label} : {series[0]} {value_text(kind, values[i])}, "
                f"{series[1]} {value_text(kind, second[i])}"
            )
    return f"{title}. " + " ; ".join(parts) + "."


def bar_chart(
    title: str,
    labels: Sequence[str],
    values: Values,
    *,
    kind: Kind = "rate",
    second: Values | None = None,
    series: tuple[str, str] = MOBILISED_SERIES,
) -> str:
    """Horizontal bars, one per label; with `second`, two bars per label and a legend."""
    if len(values) != len(labels) or (second is not None and len(second) != len(labels)):
        raise ValueError("labels and values must have the same length")
    serieses = [values] if second is None else [values, second]
    scale = _scale(kind, [v for s in serieses for v in s])
    bar_h, gap = 18, 10
    row_h = bar_h * len(serieses) + gap
    top = 8 if second is None else 32
    body: list[str] = []
    if second is not None:
        for n, name in enumerate(series):
            x = LABEL_WIDTH + n * 180
            body.append(f'<rect x="{x}" y="8" width="12" height="12" fill="{COLOURS[n]}"/>')
            body.append(f'<text x="{x + 18}" y="19">{escape(name)}</text>')
    for i, label in enumerate(labels):
        y = top + i * row_h
        middle = y + bar_h * len(serieses) / 2 + 4
        body.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{middle:g}" text-anchor="end">{escape(label)}</text>'
        )
        for n, s in enumerate(serieses):
            v = s[i]
            by = y + n * bar_h
            w = 0.0 if v is None or v <= 0 else BAR_SPACE * v / scale
            body.append(
                f'<rect x="{LABEL_WIDTH}" y="{by}" width="{w:.1f}" height="{bar_h - 2}" '
                f'fill="{COLOURS[n]}"/>'
            )
            body.append(
                f'<text x="{LABEL_WIDTH + w + 6:.1f}" y="{by + bar_h - 5}">'
                f"{escape(value_text(kind, v))}</text>"
            )
    height = top + len(labels) * row_h + 4
    return _svg(title, _summary(title, labels, values, kind, second, series), height, body)


def monthly_chart(
    title: str,
    labels: Sequence[str],
    values: Values,
    *,
    kind: Kind = "rate",
    style: str = "column",
) -> str:
    """Columns (or a line, `style="line"`) across the months; gaps where not computable."""
    if len(values) != len(labels):
        raise ValueError("labels and values must have the same length")
    if style not in ("column", "line"):
        raise ValueError(f"unknown style {style!r}")
    left, right, top, bottom, height = 56, WIDTH - 16, 24, 200, 240
    scale = _scale(kind, values)
    slot = (right - left) / max(len(labels), 1)
    zero, peak = escape(value_text(kind, 0)), escape(value_text(kind, scale))
    body = [
        f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#555"/>',
        f'<text x="{left - 6}" y="{bottom + 4}" text-anchor="end">{zero}</text>',
        f'<line x1="{left}" y1="{top}" x2="{right}" y2="{top}" stroke="#ddd"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{peak}</text>',
    ]
    points: list[list[tuple[float, float]]] = [[]]
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        cx = left + slot * (i + 0.5)
        body.append(
            f'<text x="{cx:.1f}" y="{bottom + 18}" text-anchor="middle" font-size="11">'
            f"{escape(label)}</text>"
        )
        if v is None:
            points.append([])
            continue
        y = bottom - (bottom - top) * max(v, 0) / scale
        if style == "column":
            w = slot * 0.6
            body.append(
                f'<rect x="{cx - w / 2:.1f}" y="{y:.1f}" width="{w:.1f}" '
                f'height="{bottom - y:.1f}" fill="{COLOURS[0]}"/>'
            )
        else:
            points[-1].append((cx, y))
            body.append(f'<circle cx="{cx:.1f}" cy="{y:.1f}" r="3" fill="{COLOURS[0]}"/>')
    for run in points:
        if len(run) > 1:
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
            body.append(
                f'<polyline points="{coords}" fill="none" stroke="{COLOURS[0]}" stroke-width="2"/>'
            )
    summary = _summary(title, labels, values, kind, None, MOBILISED_SERIES)
    return _svg(title, summary, height, body)


def table_rows(
    labels: Sequence[str],
    values: Values,
    *,
    kind: Kind = "rate",
    second: Values | None = None,
    series: tuple[str, str] = MOBILISED_SERIES,
    heading: str = "Libellé",
) -> list[tuple[str, ...]]:
    """The chart's data table: a header row, then one row per label, values formatted."""
    if second is None:
        rows: list[tuple[str, ...]] = [(heading, "Valeur")]
        rows += [(label, value_text(kind, v)) for label, v in zip(labels, values, strict=True)]
        return rows
    rows = [(heading, *series)]
    rows += [
        (label, value_text(kind, a), value_text(kind, b))
        for label, a, b in zip(labels, values, second, strict=True)
    ]
    return rows


def comparison_chart(title: str, results: Sequence[Result]) -> str:
    """The "chargé·e mobilisé·e or not" comparisons: both groups' rates, per indicator."""
    labels = [r.label for r in results]
    with_officer = [r.groups[0].rate if r.groups else None for r in results]
    without = [r.groups[1].rate if len(r.groups) > 1 else None for r in results]
    return bar_chart(title, labels, with_officer, kind="rate", second=without)


def series_chart(title: str, results: Sequence[Result], *, style: str = "column") -> str:
    """A monthly series (`reporting.series.monthly_series`) as a chart, months in French."""
    kind: Kind = results[0].kind if results else "rate"
    labels = [month_label(r.period).split(" ")[0] for r in results]
    return monthly_chart(title, labels, [r.value for r in results], kind=kind, style=style)

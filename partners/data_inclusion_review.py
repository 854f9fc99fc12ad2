"""When a service of the national referential is *à vérifier*: old or of low quality.

Why a module of its own: routing (``engine.intake.run.load_network``) and the directory ask
the question for every imported service, and must not load the schema package to do so.

Pure: standard library only.
"""

from __future__ import annotations

from datetime import date

STALE_AFTER_MONTHS = 12
LOW_QUALITY_SCORE = 0.5  # data·inclusion's score_qualite runs from 0 to 1


def months_before(day: date, months: int) -> date:
    """The same day ``months`` earlier (a day the month lacks falls back to its last day)."""
    total = day.year * 12 + day.month - 1 - months
    year, month = divmod(total, 12)
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month + 1, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def is_stale(date_maj: date, today: date) -> bool:
    """Not updated for more than 12 months."""
    return date_maj < months_before(today, STALE_AFTER_MONTHS)


def is_low_quality(score: float | None) -> bool:
    return score is not None and score < LOW_QUALITY_SCORE


def review_reasons(date_maj: date, score: float | None, today: date) -> tuple[str, ...]:
    """Why a service is *à vérifier* (empty when it is fresh), in French."""
    reasons = []
    if is_stale(date_maj, today):
        reasons.append(f"plus de 12 mois sans mise à jour (dernière le {date_maj:%d/%m/%Y})")
    if is_low_quality(score):
        shown = f"{score:.2f}".replace(".", ",")
        reasons.append(f"score de qualité faible ({shown} sur 1)")
    return tuple(reasons)

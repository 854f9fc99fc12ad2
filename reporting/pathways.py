"""What "accompanied in the period" and "during the pathway" mean, written once.

Why: every impact figure rests on the same few questions about a person (were they in the
programme during the period, did something happen while they were, was an officer already
on their case). Answering them in one place keeps the figures consistent with each other
and with the definitions shown beside them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from reporting.records import STREET, Period, Person


def accompanied(person: Person, period: Period) -> bool:
    """In the programme for at least one day of the period (entry and exit days included)."""
    return person.entry_date <= period.end and (
        person.exit_date is None or person.exit_date >= period.start
    )


def exited_in(person: Person, period: Period) -> bool:
    """Left the programme during the period."""
    return person.exit_date is not None and period.contains(person.exit_date)


def in_pathway(person: Person, day: date, period: Period) -> bool:
    """The day falls within the period and within the person's [entry, exit] days."""
    if not period.contains(day) or day < person.entry_date:
        return False
    return person.exit_date is None or day <= person.exit_date


def had_health_event(person: Person, kinds: Iterable[str], period: Period) -> bool:
    """A health event of one of these kinds happened during the pathway, in the period."""
    wanted = frozenset(kinds)
    return any(e.kind in wanted and in_pathway(person, e.on, period) for e in person.health_events)


def moved_to(person: Person, situations: Iterable[str], period: Period) -> bool:
    """A housing change to one of these situations happened during the pathway, in the period."""
    wanted = frozenset(situations)
    return any(
        c.after in wanted and in_pathway(person, c.on, period) for c in person.housing_changes
    )


def mobilised(person: Person, domain: str, period: Period) -> bool:
    """The domain's officer had taken the person's case in hand by the end of what we observe.

    What we observe ends at the earlier of the period's last day and the exit day, so a month
    of a monthly series does not count an officer who only came later.
    """
    since = person.mobilised.get(domain)
    if since is None:
        return False
    horizon = period.end if person.exit_date is None else min(period.end, person.exit_date)
    return since <= horizon


def street_history(person: Person) -> bool:
    """At the street at entry, or some months of street life before it."""
    return person.street_months_at_entry > 0 or person.housing_at_entry == STREET

"""Business days with French public holidays (the ``holidays`` library, not a hand list).

Why: triage deadlines are counted in working days; a referral made on the Friday before
Easter is not late on Tuesday.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache

import holidays


@cache
def _french_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("FR", years=[year - 1, year, year + 1])


def is_business_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _french_holidays(day.year)


def add_business_days(start: date, n: int) -> date:
    """The n-th business day after ``start`` (n >= 0; 0 gives the next business day or start)."""
    day = start
    if n == 0:
        while not is_business_day(day):
            day += timedelta(days=1)
        return day
    count = 0
    while count < n:
        day += timedelta(days=1)
        if is_business_day(day):
            count += 1
    return day


def end_of_day_utc(day: date) -> datetime:
    """Deadlines fall at 18:00 UTC of their day (evening in metropolitan France)."""
    return datetime.combine(day, time(18, 0), tzinfo=UTC)

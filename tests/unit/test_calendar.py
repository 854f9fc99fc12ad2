"""Business days follow French public holidays (from the holidays library)."""

from datetime import date

from engine.domain.calendar import add_business_days, is_business_day


def test_weekends_and_public_holidays_are_not_business_days():
    assert not is_business_day(date(2026, 11, 28))  # Saturday
    assert not is_business_day(date(2026, 11, 11))  # Armistice
    assert not is_business_day(date(2026, 5, 1))  # Fête du travail
    assert not is_business_day(date(2027, 3, 29))  # Lundi de Pâques 2027
    assert is_business_day(date(2026, 11, 26))


def test_two_business_days_skip_weekends_and_holidays():
    assert add_business_days(date(2026, 11, 26), 2) == date(2026, 11, 30)  # Thu → Mon
    assert add_business_days(date(2026, 11, 10), 2) == date(2026, 11, 13)  # skips 11 Nov
    assert add_business_days(date(2026, 12, 24), 2) == date(
        2026, 12, 29
    )  # skips Christmas + weekend
    assert add_business_days(date(2027, 3, 26), 2) == date(
        2027, 3, 31
    )  # Good Friday is worked, Easter Monday is not
    assert add_business_days(date(2026, 11, 28), 0) == date(2026, 11, 30)

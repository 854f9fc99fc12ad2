"""Operational indicators: referrals by state and domain, delays, partner answers, pools, overdue."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from reporting.catalogue import compute, compute_all
from reporting.indicators import Result
from reporting.operations import DOMAINS, OPEN_STATES, STATES, is_open, is_overdue
from reporting.records import Period, PoolRecord, Referral

Y2024 = Period.year(2024)
MARCH = Period.month(2024, 3)


def at(day: int, month: int = 3, hour: int = 9) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=UTC)


def referral(**kw: object) -> Referral:
    base: dict[str, object] = {
        "id": 1,
        "person_id": 1,
        "programme": "cvg",
        "territory": "lyon",
        "chantier": "ach-lyon-1",
        "domain": "emploi",
        "state": "new",
        "created_at": at(1),
    }
    base.update(kw)
    return Referral(**base)  # type: ignore[arg-type]


def answered(
    partner: str, accepted: bool, days: float, *, offer: str = "o", **kw: object
) -> Referral:
    sent = at(4)
    return referral(
        state="accepted" if accepted else "refused",
        partner=partner,
        offer=offer,
        referred_at=sent,
        answered_at=sent + timedelta(days=days),
        accepted=accepted,
        **kw,
    )


def pool(code: str = "cdc", **kw: object) -> PoolRecord:
    base: dict[str, object] = {
        "code": code,
        "name": "CDC Habitat — logements",
        "territory": "paris",
        "unit_kind": "logement",
        "period_start": date(2024, 1, 1),
        "period_end": date(2024, 12, 31),
        "capacity": 4,
        "held": 1,
        "proposed": 1,
        "waiting": 3,
    }
    base.update(kw)
    return PoolRecord(**base)  # type: ignore[arg-type]


def op(code: str, period: Period = MARCH, **kw: object) -> Result:
    return compute(code, period, **kw)  # type: ignore[arg-type]


def by_code(results: list[Result]) -> dict[str, Result]:
    return {r.key: r for r in results}


def test_state_and_domain_vocabularies_in_french() -> None:
    assert list(STATES.values()) == [
        "Nouvelle",
        "En qualification",
        "Orientée",
        "En attente de place",
        "Place proposée",
        "Acceptée",
        "En cours",
        "Clôturée",
        "Refusée",
        "Expirée",
        "Annulée",
        "Transférée",
    ]
    assert set(STATES) - OPEN_STATES == {"closed", "refused", "expired", "cancelled", "transferred"}
    assert DOMAINS["sante"] == "santé"


def test_referrals_created_in_the_period_by_state_and_domain() -> None:
    refs = [
        referral(id=1, state="new", domain="emploi"),
        referral(id=2, state="new", domain="sante", created_at=at(31, hour=23)),
        referral(id=3, state="closed", domain="logement"),
        referral(id=4, state="new", created_at=at(1, month=4, hour=0)),  # April
        referral(id=5, state="new", created_at=at(29, month=2)),  # February
    ]
    r = by_code(compute_all(MARCH, referrals=refs))
    assert r["referrals_created"].value == 3
    assert r["referrals_by_state.new"].value == 2
    assert r["referrals_by_state.closed"].value == 1
    assert r["referrals_by_state.refused"].value == 0
    assert r["referrals_by_domain.sante"].value == 1
    assert r["referrals_by_domain.transverse"].value == 0
    assert (
        r["referrals_by_state.waitlisted"].label
        == "Orientations créées — état « En attente de place »"
    )
    assert r["referrals_by_domain.sante"].label == "Orientations créées — domaine santé"
    assert sum(r[f"referrals_by_state.{s}"].value or 0 for s in STATES) == 3


def test_referral_filters_apply_to_operations() -> None:
    refs = [
        referral(id=1),
        referral(id=2, programme="phc", territory=None, chantier="phc-1"),
        referral(id=3, territory="paris"),
    ]
    assert op("referrals_created", referrals=refs).value == 3
    assert op("referrals_created", referrals=refs, programme="phc").value == 1
    assert op("referrals_created", referrals=refs, territory="paris").value == 1
    assert op("referrals_created", referrals=refs, chantier="phc-1").value == 1


def test_median_triage_time_over_referrals_triaged_in_the_period() -> None:
    refs = [
        referral(id=1, triaged_at=at(1) + timedelta(days=1)),
        referral(id=2, triaged_at=at(1) + timedelta(days=2)),
        referral(id=3, triaged_at=at(1) + timedelta(days=4)),
        referral(id=4, triaged_at=at(1) + timedelta(days=5)),
        referral(id=5, created_at=at(20, month=2), triaged_at=at(2)),  # created before: counts
        referral(id=6, triaged_at=None),
        referral(id=7, triaged_at=at(2, month=4)),  # triaged in April
    ]
    r = op("triage_median_days", referrals=refs)
    assert r.kind == "median_days"
    assert r.denominator == 5
    assert r.value == pytest.approx(4.0)  # 1, 2, 4, 5 and 11 days
    assert r.display == "4\u202fjours (sur 5)"


def test_median_with_an_even_count_is_the_mean_of_the_middle_two() -> None:
    refs = [referral(id=i, triaged_at=at(1) + timedelta(days=d)) for i, d in enumerate([1, 2])]
    assert op("triage_median_days", referrals=refs).value == pytest.approx(1.5)


def test_no_triage_in_the_period_is_not_computable() -> None:
    r = op("triage_median_days", referrals=[referral()])
    assert r.value is None and r.denominator == 0
    assert r.display == "non calculable : aucune orientation qualifiée pendant la période"


def test_partner_answers_rate_and_delay_per_partner_and_offer() -> None:
    refs = [
        answered("ft", True, 2, id=1, offer="cdi"),
        answered("ft", True, 4, id=2, offer="cdi"),
        answered("ft", False, 10, id=3, offer="formation"),
        answered("cpam", False, 1, id=4, offer="bilan"),
        referral(  # answered in January
            id=5,
            partner="ft",
            referred_at=at(2, month=1),
            answered_at=at(5, month=1),
            accepted=True,
        ),
        referral(id=6, partner="ft", referred_at=at(4)),  # no answer yet
    ]
    r = by_code(compute_all(MARCH, referrals=refs))
    assert (r["partner_acceptance"].numerator, r["partner_acceptance"].denominator) == (2, 4)
    assert r["partner_answer_delay"].value == pytest.approx(3.0)
    ft = r["partner_acceptance.ft"]
    assert (ft.numerator, ft.denominator, ft.value) == (2, 3, pytest.approx(2 / 3))
    assert r["partner_answer_delay.ft"].value == pytest.approx(4.0)
    assert r["partner_answer_delay.ft"].denominator == 3
    assert r["partner_acceptance.cpam"].value == 0.0
    assert r["offer_acceptance.cdi"].value == 1.0
    assert r["offer_answer_delay.formation"].value == pytest.approx(10.0)
    assert r["offer_acceptance.bilan"].label == "Taux d'acceptation — offre bilan"


def test_a_partner_without_answers_in_the_month_reads_not_computable() -> None:
    refs = [answered("ft", True, 2)]
    r = op("partner_acceptance.ft", Period.month(2024, 5), referrals=refs)
    assert r.value is None and r.note == "aucune réponse de partenaire pendant la période"


def test_pool_fill_and_held_per_pool_and_overall() -> None:
    pools = [
        pool("cdc", capacity=4, held=1, proposed=1, waiting=3),
        pool("bdc", name="Bureaux du cœur", territory="lyon", capacity=6, held=3, proposed=0),
        pool("old", period_start=date(2023, 1, 1), period_end=date(2023, 12, 31)),
        pool("empty", capacity=0, held=0, proposed=0),
    ]
    r = by_code(compute_all(Y2024, pools=pools))
    assert r["pool_fill.cdc"].value == pytest.approx(0.5)
    assert r["pool_held.cdc"].value == pytest.approx(0.25)
    assert r["pool_waiting.cdc"].value == 3
    assert r["pool_fill.cdc"].label == "Remplissage du contingent CDC Habitat — logements"
    assert (r["pool_fill"].numerator, r["pool_fill"].denominator) == (5, 10)
    assert (r["pool_held"].numerator, r["pool_held"].denominator) == (4, 10)
    assert "pool_fill.old" not in r
    assert r["pool_fill.empty"].value is None
    assert (
        r["pool_fill.empty"].note == "aucune place dans les contingents valables pendant la période"
    )
    lyon = by_code(compute_all(Y2024, pools=pools, territory="lyon"))
    assert (lyon["pool_fill"].numerator, lyon["pool_fill"].denominator) == (3, 6)
    assert "pool_fill.cdc" not in lyon


def test_waiting_time_from_waitlist_to_placement() -> None:
    refs = [
        referral(id=1, pool="cdc", waitlisted_at=at(1, month=1), placed_at=at(11, month=3)),
        referral(id=2, pool="cdc", waitlisted_at=at(1), placed_at=at(5)),
        referral(id=3, pool="bdc", waitlisted_at=at(1), placed_at=at(3)),
        referral(id=4, pool="bdc", placed_at=at(3)),  # never waited
        referral(id=5, pool="cdc", waitlisted_at=at(1)),  # still waiting
    ]
    pools = [pool("cdc"), pool("bdc")]
    r = by_code(compute_all(MARCH, referrals=refs, pools=pools))
    assert r["waitlist_median_days"].denominator == 3
    assert r["waitlist_median_days"].value == pytest.approx(4.0)
    assert r["waitlist_median_days.cdc"].value == pytest.approx((70 + 4) / 2)
    assert r["waitlist_median_days.bdc"].value == pytest.approx(2.0)


def test_open_and_overdue_at_the_end_of_the_period() -> None:
    refs = [
        referral(id=1, state="referred", due_at=at(20)),  # overdue at the end of March
        referral(id=2, state="referred", due_at=at(2, month=4)),  # not yet
        referral(id=3, state="new"),  # no due date
        referral(id=4, state="closed", due_at=at(10), ended_at=at(15)),  # ended in time
        referral(id=5, state="closed", due_at=at(10), ended_at=at(5, month=4)),  # open then, late
        referral(id=6, state="new", created_at=at(1, month=4), due_at=at(2, month=4)),  # later
        referral(id=7, state="cancelled", due_at=at(10)),  # ended, instant unknown
    ]
    r = by_code(compute_all(MARCH, referrals=refs))
    assert r["open_referrals"].value == 4
    overdue = r["overdue_referrals"]
    assert (overdue.value, overdue.numerator, overdue.denominator) == (2, 2, 4)
    assert overdue.display == "2 (sur 4)"


def test_overdue_as_of_a_chosen_instant() -> None:
    refs = [referral(state="referred", due_at=at(20))]
    assert op("overdue_referrals", referrals=refs, as_of=at(19)).value == 0
    assert op("overdue_referrals", referrals=refs, as_of=at(21)).value == 1
    naive = datetime(2024, 3, 21, 9)  # taken as UTC
    assert op("overdue_referrals", referrals=refs, as_of=naive).value == 1


def test_open_is_read_from_the_end_instant_then_the_state() -> None:
    r = referral(state="closed", ended_at=at(10))
    assert is_open(r, at(9)) and not is_open(r, at(10))
    assert not is_open(referral(created_at=at(10)), at(9))
    assert not is_overdue(referral(state="in_progress"), at(9))
    assert is_overdue(referral(state="in_progress", due_at=at(5)), at(9))


def test_operations_over_nothing() -> None:
    r = by_code(compute_all(MARCH))
    assert r["referrals_created"].value == 0
    for key in ("partner_acceptance", "pool_fill", "waitlist_median_days", "triage_median_days"):
        assert r[key].value is None and r[key].note, key
    assert not any(k.startswith(("partner_acceptance.", "pool_fill.")) for k in r)

"""The report's figures (CVG and PHC) on hand-made people, and the indicator model around them."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reporting import pathways
from reporting.catalogue import compute, compute_all, find, indicators
from reporting.impact import CVG, PHC
from reporting.indicators import Group, Result, compare, median_days, rate
from reporting.records import (
    EXIT_CATEGORIES,
    HealthEvent,
    HousingChange,
    Period,
    Person,
)

Y2024 = Period.year(2024)
REFERENCE = Path("/work/shared/reference/convergence-2024.json")


def person(**kw: object) -> Person:
    base: dict[str, object] = {
        "id": 1,
        "programme": "cvg",
        "territory": "lyon",
        "chantier": "ach-lyon-1",
        "entry_date": date(2024, 1, 15),
    }
    base.update(kw)
    return Person(**base)  # type: ignore[arg-type]


def exited(on: date, category: str, **kw: object) -> Person:
    return person(exit_date=on, exit_category=category, **kw)


def hosted_at_entry(**kw: object) -> Person:
    return person(housing_at_entry="emergency_shelter", **kw)


def housed_on(day: date) -> tuple[HousingChange, ...]:
    return (HousingChange(day, "emergency_shelter", "housed"),)


def health(*events: tuple[str, date]) -> tuple[HealthEvent, ...]:
    return tuple(HealthEvent(on, kind) for kind, on in events)


def figure(code: str, people: list[Person], period: Period = Y2024, **kw: object) -> Result:
    programme = kw.pop("programme", "cvg")
    return compute(code, period, people=people, programme=programme, **kw)  # type: ignore[arg-type]


# --- who is accompanied ---------------------------------------------------------------------


def test_entry_on_the_last_day_of_the_period_counts() -> None:
    r = figure("salaries_accompanied_2024", [person(entry_date=date(2024, 12, 31))])
    assert (r.value, r.numerator, r.kind) == (1, 1, "count")


def test_entry_after_the_period_does_not_count() -> None:
    assert figure("salaries_accompanied_2024", [person(entry_date=date(2025, 1, 1))]).value == 0


def test_exit_before_the_period_start_does_not_count_but_exit_on_its_first_day_does() -> None:
    before = exited(date(2023, 12, 31), "autre", entry_date=date(2023, 1, 1))
    first_day = exited(date(2024, 1, 1), "autre", id=2, entry_date=date(2023, 1, 1))
    assert figure("salaries_accompanied_2024", [before, first_day]).value == 1


def test_people_of_the_other_programme_and_other_filters_are_left_out() -> None:
    people = [
        person(id=1),
        person(id=2, programme="phc"),
        person(id=3, territory="paris"),
        person(id=4, chantier="other"),
    ]
    assert figure("salaries_accompanied_2024", people).value == 3
    assert figure("salaries_accompanied_2024", people, programme="phc").value == 1
    assert figure("salaries_accompanied_2024", people, territory="lyon").value == 2
    r = figure("salaries_accompanied_2024", people, chantier="other")
    assert (r.value, r.territory, r.programme) == (1, None, "cvg")


def test_the_count_keeps_its_report_code_whatever_the_period() -> None:
    r = figure("salaries_accompanied_2024", [person()], Period.month(2025, 3))
    assert (r.code, r.period, r.value) == ("salaries_accompanied_2024", "2025-03", 1)


# --- CVG public -----------------------------------------------------------------------------


@pytest.mark.parametrize(("freins", "counted"), [(2, False), (3, True), (7, True), (8, False)])
def test_three_to_seven_freins_bounds_included(freins: int, counted: bool) -> None:
    r = figure("share_with_3_to_7_freins", [person(freins=freins), person(id=2, freins=0)])
    assert (r.numerator, r.denominator) == (int(counted), 2)
    assert r.value == pytest.approx(0.5 if counted else 0.0)


@pytest.mark.parametrize(
    ("housing", "months", "counted"),
    [("street", 0, True), ("housed", 3, True), ("emergency_shelter", 0, False)],
)
def test_street_history_is_street_at_entry_or_months_on_the_street(
    housing: str, months: int, counted: bool
) -> None:
    p = person(housing_at_entry=housing, street_months_at_entry=months)
    assert figure("share_with_street_history", [p]).value == (1.0 if counted else 0.0)


@pytest.mark.parametrize(
    "code",
    [
        "share_with_3_to_7_freins",
        "share_with_street_history",
        "health_rights_opened",
        "health_coverage_improved_additionally",
    ],
)
def test_rates_over_nobody_are_not_computable(code: str) -> None:
    r = figure(code, [])
    assert r.value is None
    assert (r.numerator, r.denominator) == (0, 0)
    assert r.note == "aucun·e salarié·e accompagné·e pendant la période"
    assert r.display.startswith("non calculable : aucun")
    assert r.as_dict()["value"] is None


# --- CVG exits and employment ---------------------------------------------------------------


def test_dynamic_exits_among_exits_of_the_period() -> None:
    people = [
        exited(date(2024, 3, 1), "emploi_durable", id=1),
        exited(date(2024, 4, 1), "emploi_transition", id=2),
        exited(date(2024, 5, 1), "sortie_positive", id=3),
        exited(date(2024, 6, 1), "autre", id=4),
        exited(date(2023, 12, 31), "emploi_durable", id=5, entry_date=date(2023, 1, 1)),
        person(id=6),  # still in
    ]
    r = figure("exit_to_employment_or_training", people)
    assert (r.numerator, r.denominator, r.value) == (3, 4, 0.75)


def test_no_exit_in_the_period_is_not_computable() -> None:
    r = figure("exit_to_employment_or_training", [person()])
    assert r.value is None
    assert r.note == "aucune sortie pendant la période"


def test_employment_uplift_gives_difference_ratio_and_both_groups() -> None:
    mob = {"emploi": date(2024, 2, 1)}
    people = [
        exited(date(2024, 6, 1), "emploi_durable", id=1, mobilised=mob),
        exited(date(2024, 6, 1), "emploi_durable", id=2, mobilised=mob),
        exited(date(2024, 6, 1), "autre", id=3, mobilised=mob),
        exited(date(2024, 6, 1), "autre", id=4, mobilised=mob),
        exited(date(2024, 6, 1), "emploi_durable", id=5),
        exited(date(2024, 6, 1), "autre", id=6),
        exited(date(2024, 6, 1), "autre", id=7),
        exited(date(2024, 6, 1), "autre", id=8),
    ]
    r = figure("employment_uplift_when_emploi_officer_mobilised", people)
    assert r.kind == "difference"
    assert r.value == pytest.approx(0.25)  # 50 % − 25 %
    assert r.ratio == pytest.approx(2.0)
    mobilised, others = r.groups
    assert (mobilised.key, mobilised.numerator, mobilised.denominator) == ("mobilised", 2, 4)
    assert (others.key, others.numerator, others.denominator) == ("not_mobilised", 1, 4)
    d = r.as_dict()
    assert d["ratio"] == pytest.approx(2.0)
    assert [g["denominator"] for g in d["groups"]] == [4, 4]
    assert r.display == "+25\u202fpts, ×\u202f2,00"


def test_uplift_without_anyone_mobilised_is_not_computable_but_keeps_the_groups() -> None:
    r = figure(
        "employment_uplift_when_emploi_officer_mobilised",
        [exited(date(2024, 6, 1), "emploi_durable")],
    )
    assert r.value is None and r.ratio is None
    assert "Chargé·e de partenariat emploi mobilisé·e" in (r.note or "")
    assert [(g.numerator, g.denominator) for g in r.groups] == [(0, 0), (1, 1)]


def test_uplift_ratio_is_not_computable_when_the_others_never_succeed() -> None:
    mob = {"emploi": date(2024, 2, 1)}
    people = [
        exited(date(2024, 6, 1), "emploi_durable", id=1, mobilised=mob),
        exited(date(2024, 6, 1), "autre", id=2),
    ]
    r = figure("employment_uplift_when_emploi_officer_mobilised", people)
    assert r.value == pytest.approx(1.0)
    assert r.ratio is None
    assert r.display.endswith("rapport non calculable")


def test_an_officer_mobilised_after_the_exit_or_after_the_period_does_not_count() -> None:
    after_exit = exited(date(2024, 3, 1), "emploi_durable", mobilised={"emploi": date(2024, 4, 1)})
    assert not pathways.mobilised(after_exit, "emploi", Y2024)
    later = person(mobilised={"emploi": date(2024, 2, 10)})
    assert not pathways.mobilised(later, "emploi", Period.month(2024, 1))
    assert pathways.mobilised(later, "emploi", Period.month(2024, 2))
    assert not pathways.mobilised(later, "logement", Y2024)


# --- CVG housing ----------------------------------------------------------------------------


def test_housing_access_among_hosted_at_entry() -> None:
    people = [
        hosted_at_entry(id=1, housing_changes=housed_on(date(2024, 5, 1))),
        hosted_at_entry(id=2, housing_changes=housed_on(date(2025, 2, 1))),  # after the period
        hosted_at_entry(
            id=3,
            entry_date=date(2023, 1, 1),
            housing_changes=housed_on(date(2023, 6, 1)),  # before the period
        ),
        person(id=4, housing_at_entry="hosted_third_party", housing_changes=()),
        person(id=5, housing_at_entry="street", housing_changes=housed_on(date(2024, 5, 1))),
        person(id=6, housing_at_entry="housed"),
    ]
    r = figure("housing_access_among_hosted_at_entry", people)
    assert (r.numerator, r.denominator) == (1, 4)


def test_housing_after_the_exit_is_not_during_the_pathway() -> None:
    p = hosted_at_entry(
        exit_date=date(2024, 4, 1),
        exit_category="autre",
        housing_changes=housed_on(date(2024, 4, 2)),
    )
    assert figure("housing_access_among_hosted_at_entry", [p]).value == 0.0
    on_exit_day = hosted_at_entry(
        exit_date=date(2024, 4, 1),
        exit_category="autre",
        housing_changes=housed_on(date(2024, 4, 1)),
    )
    assert figure("housing_access_among_hosted_at_entry", [on_exit_day]).value == 1.0


def test_a_move_to_another_shelter_is_not_housing_access() -> None:
    p = hosted_at_entry(
        housing_changes=(
            HousingChange(date(2024, 5, 1), "emergency_shelter", "integration_housing"),
        )
    )
    assert figure("housing_access_among_hosted_at_entry", [p]).value == 0.0


def test_housing_access_over_nobody_hosted() -> None:
    r = figure("housing_access_among_hosted_at_entry", [person()])
    assert r.value is None and r.note == "aucun·e salarié·e accompagné·e hébergé·e à l'entrée"


def test_housing_uplift_compares_logement_officer_groups() -> None:
    mob = {"logement": date(2024, 1, 20)}
    people = [
        hosted_at_entry(id=1, mobilised=mob, housing_changes=housed_on(date(2024, 6, 1))),
        hosted_at_entry(id=2, mobilised=mob),
        hosted_at_entry(id=3),
        hosted_at_entry(id=4),
        person(id=5, mobilised=mob),  # housed at entry: outside the population
    ]
    r = figure("housing_uplift_when_logement_officer_mobilised", people)
    assert r.value == pytest.approx(0.5)
    assert r.ratio is None
    assert [(g.numerator, g.denominator) for g in r.groups] == [(1, 2), (0, 2)]


# --- CVG health -----------------------------------------------------------------------------


def test_health_rights_opened_in_the_period_during_the_pathway() -> None:
    people = [
        person(id=1, health_events=health(("rights_opened", date(2024, 3, 1)))),
        person(id=2, health_events=health(("rights_opened", date(2025, 1, 2)))),
        person(id=3, health_events=health(("coverage_improved", date(2024, 3, 1)))),
        person(id=4, health_events=health(("rights_opened", date(2024, 1, 1)))),  # before entry
    ]
    r = figure("health_rights_opened", people)
    assert (r.numerator, r.denominator) == (1, 4)


def test_coverage_improved_counts_only_people_without_rights_opened() -> None:
    people = [
        person(id=1, health_events=health(("coverage_improved", date(2024, 3, 1)))),
        person(
            id=2,
            health_events=health(
                ("coverage_improved", date(2024, 3, 1)), ("rights_opened", date(2024, 2, 1))
            ),
        ),
        person(
            id=3,  # rights opened before the period: the improvement is additional in 2024
            entry_date=date(2023, 1, 1),
            health_events=health(
                ("coverage_improved", date(2024, 3, 1)), ("rights_opened", date(2023, 5, 1))
            ),
        ),
        person(id=4),
    ]
    r = figure("health_coverage_improved_additionally", people)
    assert (r.numerator, r.denominator) == (2, 4)


def test_health_uplift_counts_rights_or_coverage() -> None:
    mob = {"sante": date(2024, 2, 1)}
    people = [
        person(id=1, mobilised=mob, health_events=health(("rights_opened", date(2024, 3, 1)))),
        person(id=2, mobilised=mob, health_events=health(("coverage_improved", date(2024, 3, 1)))),
        person(id=3, health_events=health(("care_pathway", date(2024, 3, 1)))),
        person(id=4, health_events=health(("coverage_improved", date(2024, 3, 1)))),
    ]
    r = figure("health_uplift_when_sante_officer_mobilised", people)
    assert r.value == pytest.approx(0.5)
    assert r.ratio == pytest.approx(2.0)
    assert [(g.numerator, g.denominator) for g in r.groups] == [(2, 2), (1, 2)]


# --- PHC ------------------------------------------------------------------------------------


def phc(**kw: object) -> Person:
    return person(programme="phc", territory=None, chantier="phc-rural", **kw)


def test_phc_public() -> None:
    people = [
        phc(id=1, housing_at_entry="street", street_months_at_entry=30, referred_by="siao_115"),
        phc(id=2, housing_at_entry="street", street_months_at_entry=24, referred_by="maraude"),
        phc(id=3, street_months_at_entry=2, referred_by="ccas", resources_at_entry=False),
        phc(id=4, referred_by=None),
        person(id=5, housing_at_entry="street", street_months_at_entry=40),  # CVG
    ]

    def v(code: str) -> tuple[int | None, int | None]:
        r = figure(code, people, programme="phc")
        return r.numerator, r.denominator

    assert figure("salaries_accompanied_2024", people, programme="phc").value == 4
    assert v("share_street_or_street_history") == (3, 4)
    assert v("share_street_over_2_years") == (1, 4)
    assert v("share_referred_by_emergency_social_services") == (2, 4)
    assert v("share_without_resources_at_entry") == (1, 4)


def test_phc_sheltered_or_housed_among_street_at_entry() -> None:
    def street(i: int, after: str | None, on: date = date(2024, 5, 1)) -> Person:
        changes = () if after is None else (HousingChange(on, "street", after),)
        return phc(id=i, housing_at_entry="street", housing_changes=changes)

    people = [
        street(1, "emergency_shelter"),
        street(2, "housed"),
        street(3, "hosted_third_party", date(2025, 1, 1)),
        street(4, None),
        phc(
            id=5, housing_changes=(HousingChange(date(2024, 5, 1), "housed", "emergency_shelter"),)
        ),
    ]
    r = figure("sheltered_or_housed_among_street_at_entry", people, programme="phc")
    assert (r.numerator, r.denominator) == (2, 4)
    empty = figure("sheltered_or_housed_among_street_at_entry", [phc()], programme="phc")
    assert (
        empty.value is None and empty.note == "aucun·e salarié·e accompagné·e à la rue à l'entrée"
    )


def test_phc_employment_or_training_is_over_all_accompanied() -> None:
    people = [
        phc(id=1, exit_date=date(2024, 6, 1), exit_category="sortie_positive"),
        phc(id=2, exit_date=date(2024, 6, 1), exit_category="autre"),
        phc(id=3),
        phc(
            id=4,
            entry_date=date(2023, 1, 1),
            exit_date=date(2023, 12, 1),
            exit_category="emploi_durable",
        ),
    ]
    r = figure("employment_or_training", people, programme="phc")
    assert (r.numerator, r.denominator) == (1, 3)


def test_phc_care_pathway() -> None:
    people = [
        phc(id=1, health_events=health(("care_pathway", date(2024, 9, 1)))),
        phc(id=2, health_events=health(("rights_opened", date(2024, 9, 1)))),
    ]
    r = figure("care_pathway", people, programme="phc")
    assert (r.numerator, r.denominator, r.programme) == (1, 2, "phc")


# --- the model and the catalogue ------------------------------------------------------------


def test_rate_and_median_helpers_never_divide_by_zero() -> None:
    assert rate(0, 0, "personne").value is None
    assert median_days([], "rien").note == "rien"
    g = Group("a", "A", 0, 0)
    assert g.rate is None
    m = compare(Group("mobilised", "Avec", 1, 2), Group("not_mobilised", "Sans", 0, 0))
    assert m.value is None and m.note == "aucune personne dans le groupe « Sans »"


def test_codes_match_the_reference_table() -> None:
    ref = json.loads(REFERENCE.read_text(encoding="utf-8"))["programmes"]
    for programme, figures in (("cvg", CVG), ("phc", PHC)):
        published = {k for k, v in ref[programme].items() if isinstance(v, float | int)}
        published |= set(ref[programme]["outcomes"])
        published -= {
            "max_duration_years",
            "post_exit_followup_months",
            "max_duration_months",
            "salaries_active_2024",
        }
        assert {i.code for i in figures} == published


def test_every_indicator_has_french_label_and_definition() -> None:
    for i in indicators():
        assert i.label and i.definition.endswith(".")
        assert "période" in i.definition or i.code.startswith("pool_"), i.code


def test_find_needs_the_programme_for_a_shared_code() -> None:
    with pytest.raises(ValueError, match="plusieurs programmes"):
        find("salaries_accompanied_2024")
    assert find("salaries_accompanied_2024", "phc").programme == "phc"
    assert find("phc/salaries_accompanied_2024").programme == "phc"
    assert find("triage_median_days", "cvg").programme is None
    with pytest.raises(ValueError, match="Indicateur inconnu"):
        find("nope")
    with pytest.raises(ValueError, match="Programme inconnu"):
        compute_all(Y2024, programme="xyz")


def test_compute_all_orders_sections_and_filters_by_programme() -> None:
    results = compute_all(Y2024, people=[person(), phc(id=2)])
    sections = [r.section for r in results]
    assert sections == sorted(sections, key=["cvg", "phc", "operations"].index)
    assert {r.key for r in results} >= {"cvg/salaries_accompanied_2024", "phc/care_pathway"}
    assert len({r.key for r in results}) == len(results)
    only_phc = compute_all(Y2024, people=[person(), phc(id=2)], programme="phc")
    assert {r.programme for r in only_phc} == {"phc"}
    assert not any(r.section == "cvg" for r in only_phc)


def test_as_dict_has_the_cli_shape() -> None:
    r = figure("share_with_3_to_7_freins", [person(freins=4)], territory="lyon")
    d = r.as_dict()
    assert {
        k: d[k]
        for k in (
            "code",
            "programme",
            "label",
            "value",
            "numerator",
            "denominator",
            "period",
            "territory",
        )
    } == {
        "code": "share_with_3_to_7_freins",
        "programme": "cvg",
        "label": "Salarié·es cumulant 3 à 7 freins à l'emploi",
        "value": 1.0,
        "numerator": 1,
        "denominator": 1,
        "period": "2024",
        "territory": "lyon",
    }
    assert d["kind"] == "rate" and d["definition"] == r.definition
    json.dumps(d)


# --- invariants -----------------------------------------------------------------------------

days_2023_2025 = st.dates(min_value=date(2023, 1, 1), max_value=date(2025, 12, 31))


@st.composite
def people(draw: st.DrawFn) -> list[Person]:
    out = []
    for i in range(draw(st.integers(0, 12))):
        entry = draw(days_2023_2025)
        leaves = draw(st.booleans())
        exit_day = draw(st.dates(min_value=entry, max_value=date(2026, 6, 30))) if leaves else None
        out.append(
            Person(
                id=i,
                programme=draw(st.sampled_from(["cvg", "phc"])),
                territory=draw(st.sampled_from(["lyon", "paris", None])),
                chantier="c",
                entry_date=entry,
                exit_date=exit_day,
                exit_category=draw(st.sampled_from(list(EXIT_CATEGORIES))) if leaves else None,
                referred_by=draw(st.sampled_from([None, "siao_115", "maraude", "ccas"])),
                housing_at_entry=draw(
                    st.sampled_from(["street", "emergency_shelter", "hosted_third_party", "housed"])
                ),
                street_months_at_entry=draw(st.integers(0, 60)),
                resources_at_entry=draw(st.booleans()),
                freins=draw(st.integers(0, 10)),
                housing_changes=tuple(
                    HousingChange(d, "street", a)
                    for d, a in draw(
                        st.lists(
                            st.tuples(
                                days_2023_2025, st.sampled_from(["housed", "emergency_shelter"])
                            ),
                            max_size=2,
                        )
                    )
                ),
                health_events=tuple(
                    HealthEvent(d, k)
                    for d, k in draw(
                        st.lists(
                            st.tuples(
                                days_2023_2025,
                                st.sampled_from(
                                    ["rights_opened", "coverage_improved", "care_pathway"]
                                ),
                            ),
                            max_size=2,
                        )
                    )
                ),
                mobilised=draw(
                    st.dictionaries(
                        st.sampled_from(["emploi", "logement", "sante"]), days_2023_2025
                    )
                ),
            )
        )
    return out


@settings(max_examples=60, deadline=None)
@given(
    people(), st.sampled_from([Period.year(2024), Period.month(2024, 2), Period.month(2025, 12)])
)
def test_rates_are_fractions_of_their_population(population: list[Person], period: Period) -> None:
    results = compute_all(period, people=population)
    denominators = {r.key: r.denominator for r in results}
    same_population = {
        "cvg/employment_uplift_when_emploi_officer_mobilised": "cvg/exit_to_employment_or_training",
        "cvg/housing_uplift_when_logement_officer_mobilised": "cvg/housing_access_among_hosted_at_entry",
        "cvg/health_uplift_when_sante_officer_mobilised": "cvg/health_rights_opened",
    }
    for r in results:
        if r.kind == "rate":
            assert r.numerator is not None and r.denominator is not None
            assert 0 <= r.numerator <= r.denominator
            if r.denominator:
                assert r.value == pytest.approx(r.numerator / r.denominator)
                assert r.value is not None and 0.0 <= r.value <= 1.0
            else:
                assert r.value is None and r.note
        elif r.kind == "difference":
            assert r.value is None or -1.0 <= r.value <= 1.0
            assert sum(g.denominator for g in r.groups) == denominators[same_population[r.key]]
            assert all(0 <= g.numerator <= g.denominator for g in r.groups)


@settings(max_examples=40, deadline=None)
@given(people())
def test_network_count_is_the_sum_of_territories_and_outside(population: list[Person]) -> None:
    def n(**kw: object) -> int:
        r = compute("salaries_accompanied_2024", Y2024, people=population, programme="cvg", **kw)  # type: ignore[arg-type]
        assert isinstance(r.value, int)
        return r.value

    outside = sum(
        1
        for p in population
        if p.programme == "cvg" and p.territory is None and pathways.accompanied(p, Y2024)
    )
    assert n() == n(territory="lyon") + n(territory="paris") + outside

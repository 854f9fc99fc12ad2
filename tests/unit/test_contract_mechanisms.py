"""The allocate-file contract's commission and preference features: mechanism, preferences,
shortlists, exclusions — round trips, French errors naming the field, exit code 2, and
files that do not use them answered exactly as before."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.allocation import AllocationProblem, Candidate, Option, Pool, ProblemError, solve
from matching.allocation_contract import allocate_json, parse_problem

ROOT = Path(__file__).resolve().parents[2]

BASE = {
    "pools": [
        {"id": "caleol-93", "capacity": 2, "territory": "93"},
        {"id": "iml-93", "capacity": 1, "territory": "93"},
        {"id": "alt-93", "capacity": 1, "territory": "93"},
    ],
    "candidates": [
        {"id": "ana", "priority": 50, "territory": "93"},
        {"id": "ben", "priority": 40, "territory": "93"},
        {"id": "cyd-iml", "priority": 30, "territory": "93"},
        {"id": "cyd-alt", "priority": 30, "territory": "93"},
        {"id": "dan", "priority": 20, "territory": "93"},
        {"id": "eva", "priority": 10, "territory": "93"},
    ],
    "options": [
        {"candidate": "ana", "pool": "caleol-93", "weight": 500},
        {"candidate": "ana", "pool": "iml-93", "weight": 501},
        {"candidate": "ben", "pool": "caleol-93", "weight": 400},
        {"candidate": "ben", "pool": "iml-93", "weight": 402},
        {"candidate": "cyd-iml", "pool": "iml-93", "weight": 300},
        {"candidate": "cyd-alt", "pool": "alt-93", "weight": 300},
        {"candidate": "dan", "pool": "caleol-93", "weight": 200},
        {"candidate": "dan", "pool": "alt-93", "weight": 201},
        {"candidate": "eva", "pool": "caleol-93", "weight": 100},
    ],
    "time_limit_s": 5,
}


def _problem(**extra):  # type: ignore[no-untyped-def]
    data = json.loads(json.dumps(BASE))
    for key, value in extra.items():
        if key == "preferences":
            for c in data["candidates"]:
                if c["id"] in value:
                    c["preferences"] = value[c["id"]]
        elif key == "shortlist":
            for p in data["pools"]:
                if p["id"] in value:
                    p["shortlist"] = value[p["id"]]
        else:
            data[key] = value
    return json.dumps(data)


def test_a_file_without_the_features_gets_no_new_key():
    result = json.loads(allocate_json(_problem()))
    assert not {"shortlists", "blocking_pairs", "mechanisms"} & set(result)
    assert "mechanisms" not in result["stats"] and "shortlists" not in result["stats"]


def test_preferences_restrict_the_optimum_and_report_both_mechanisms():
    text = _problem(preferences={"ana": ["caleol-93"], "ben": ["iml-93", "caleol-93"]})
    result = json.loads(allocate_json(text))
    assert result == json.loads(allocate_json(text))  # deterministic
    assert result["solver"] == "min_cost_flow"
    # ana accepts only the commission pool: her IML option (501) is gone. The optimum puts
    # ana and ben in caleol-93 (900) and both of cyd's referrals elsewhere (600): 1,500.
    assert [(a["candidate"], a["pool"]) for a in result["assignments"]] == [
        ("ana", "caleol-93"),
        ("ben", "caleol-93"),
        ("cyd-alt", "alt-93"),
        ("cyd-iml", "iml-93"),
    ]
    # ben (40 points) prefers iml-93, held by cyd-iml (30): a blocking pair. The stable
    # matching gives ben iml-93 and dan caleol-93: 500 + 402 + 300 + 200 = 1,402.
    assert result["blocking_pairs"] == [{"candidate": "ben", "pool": "iml-93"}]
    m = result["mechanisms"]
    assert (m["optimal_weight"], m["optimal_served"]) == (result["objective"], 4) == (1500, 4)
    assert (m["stable_weight"], m["stable_served"]) == (1402, 4)
    assert m["optimal_blocking_pairs"] == 1 and m["stable_blocking_pairs"] == 0
    assert m["weight_ratio"] == round(1402 / 1500, 6)
    assert set(m) >= {
        "optimal_weight",
        "optimal_served",
        "stable_weight",
        "stable_served",
        "optimal_blocking_pairs",
        "weight_ratio",
    }
    assert "mechanisms" not in result["stats"]


def test_stable_mechanism_returns_the_stable_matching_with_an_honest_bound():
    # cyd-alt accepts ALT before nothing; dan prefers ALT to the commission pool: with more
    # points cyd-alt keeps ALT, so the stable matching sends dan to caleol-93.
    prefs = {"dan": ["alt-93", "caleol-93"]}
    optimal = json.loads(allocate_json(_problem(preferences=prefs)))
    stable = json.loads(allocate_json(_problem(preferences=prefs, mechanism="stable")))
    assert stable["solver"] == "deferred_acceptance" and stable["status"] == "optimal"
    assert stable["bound"] == optimal["objective"] >= stable["objective"]
    assert stable["blocking_pairs"] == []
    assert stable["mechanisms"] == optimal["mechanisms"]
    assert stable["objective"] == stable["mechanisms"]["stable_weight"]
    assert len(stable["assignments"]) == stable["mechanisms"]["stable_served"]


def test_shortlists_and_exclusions_in_the_result():
    text = _problem(
        shortlist={"caleol-93": 3},
        exclusions=[{"candidates": ["cyd-iml", "cyd-alt"], "pools": ["iml-93", "alt-93"]}],
    )
    result = json.loads(allocate_json(text))
    lists = result["shortlists"]["caleol-93"]
    assert len(lists) == 2 and all(isinstance(unit, list) for unit in lists)
    run = sorted(a["candidate"] for a in result["assignments"] if a["pool"] == "caleol-93")
    assert sorted(unit[0] for unit in lists) == run
    pairs = {(a["candidate"], a["pool"]) for a in result["assignments"]}
    assert not {("cyd-iml", "iml-93"), ("cyd-alt", "alt-93")} <= pairs
    assert "blocking_pairs" not in result and "mechanisms" not in result
    assert result["stats"]["shortlists"]["pools"] == 1


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            _problem(preferences={"ben": ["iml-93", "nulle-part"]}),
            "candidates[1].preferences[1] : dispositif « nulle-part » inconnu",
        ),
        (
            _problem(preferences={"ben": ["iml-93", "iml-93"]}),
            "candidates[1].preferences[1] : dispositif « iml-93 » en double",
        ),
        (_problem(preferences={"ana": []}), "candidates[0].preferences : liste vide"),
        (_problem(preferences={"ana": "iml-93"}), "candidates[0].preferences : liste attendue"),
        (_problem(shortlist={"iml-93": 0}), "pools[1].shortlist : valeur trop petite"),
        (_problem(shortlist={"iml-93": 21}), "pools[1].shortlist : valeur trop grande"),
        (_problem(shortlist={"iml-93": "trois"}), "pools[1].shortlist : entier attendu"),
        (_problem(mechanism="boston"), "mechanism : valeur inconnue"),
        (
            _problem(mechanism="stable", assign_all=True),
            "mechanism : le mécanisme « stable » ne peut pas imposer",
        ),
        (
            _problem(exclusions=[{"candidates": ["zz"], "pools": ["iml-93"]}]),
            "exclusions[0].candidates[0] : candidat « zz » inconnu",
        ),
        (
            _problem(exclusions=[{"candidates": ["ana"], "pools": ["iml-93", "xx"]}]),
            "exclusions[0].pools[1] : dispositif « xx » inconnu",
        ),
        (
            _problem(exclusions=[{"candidates": ["ana"]}]),
            "exclusions[0].pools : champ obligatoire manquant",
        ),
        (
            _problem(exclusions=[{"candidates": [], "pools": ["iml-93"]}]),
            "exclusions[0].candidates : liste vide",
        ),
        (
            _problem(exclusions=[{"candidates": ["ana"], "pools": ["iml-93"], "why": 1}]),
            "exclusions[0].why : champ inconnu",
        ),
    ],
)
def test_contract_errors_name_the_field(text, needle):
    with pytest.raises(ProblemError) as exc:
        allocate_json(text)
    assert needle in str(exc.value)


def test_parse_problem_maps_the_new_fields():
    problem = parse_problem(
        _problem(
            preferences={"ben": ["iml-93"]},
            shortlist={"caleol-93": 4},
            mechanism="stable",
            exclusions=[{"candidates": ["cyd-iml", "cyd-alt"], "pools": ["iml-93", "alt-93"]}],
        )
    )
    assert problem.mechanism == "stable"
    assert problem.preferences == {"ben": ("iml-93",)}
    assert problem.shortlist == {"caleol-93": 4}
    (ex,) = problem.exclusions
    assert ex.candidates == ("cyd-iml", "cyd-alt") and ex.pools == ("iml-93", "alt-93")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workflows.cli", "allocate-file", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_cli_exit_2_names_the_bad_preference(tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text(_problem(preferences={"eva": ["ailleurs"]}), encoding="utf-8")
    out = _cli(str(bad))
    assert out.returncode == 2 and out.stdout == ""
    assert "candidates[5].preferences[0] : dispositif « ailleurs » inconnu" in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_answers_a_commission_file(tmp_path: Path):
    good = tmp_path / "p.json"
    good.write_text(_problem(shortlist={"caleol-93": 2}, mechanism="stable"), encoding="utf-8")
    out = _cli(str(good))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["solver"] == "deferred_acceptance"
    assert set(result["shortlists"]) == {"caleol-93"}


def test_plain_files_do_not_load_the_mechanism_modules():
    code = (
        "import sys, json\n"
        "from matching.allocation_contract import allocate_json\n"
        f"allocate_json({_problem()!r})\n"
        "print(json.dumps(['matching.stable' in sys.modules, 'matching.shortlist' in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [False, False]


# --------------------------------------------------------------------------- the switch


@st.composite
def preference_problems(draw):  # type: ignore[no-untyped-def]
    pools = tuple(Pool(f"p{j}", draw(st.integers(0, 2))) for j in range(draw(st.integers(1, 3))))
    cands = tuple(
        Candidate(f"c{i}", draw(st.integers(0, 20))) for i in range(draw(st.integers(1, 6)))
    )
    options = tuple(
        Option(c.id, p.id, draw(st.integers(1, 30)))
        for c in cands
        for p in pools
        if draw(st.booleans())
    )
    prefs = {
        c.id: tuple(draw(st.permutations([p.id for p in pools])))[: draw(st.integers(1, 3))]
        for c in cands
        if draw(st.booleans())
    }
    return AllocationProblem(pools, cands, options, preferences=prefs)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(preference_problems())
def test_both_mechanisms_report_the_same_figures_and_the_optimum_weighs_more(problem):
    optimal = solve(problem)
    stable = solve(replace(problem, mechanism="stable"))
    m = stable.stats["mechanisms"]
    if problem.preferences:
        assert optimal.stats["mechanisms"] == m
    else:  # nobody stated anything: the optimal run does not pay for the comparison
        assert "mechanisms" not in optimal.stats and optimal.blocking_pairs == ()
    assert m["optimal_weight"] == optimal.objective >= m["stable_weight"] == stable.objective
    assert m["optimal_served"] == len(optimal.assignments)
    assert m["stable_served"] == len(stable.assignments)
    assert stable.bound == optimal.bound >= stable.objective
    assert stable.blocking_pairs == ()  # unit consumption: deferred acceptance is stable
    if problem.preferences:
        assert len(optimal.blocking_pairs) == m["optimal_blocking_pairs"]
    accepted = {
        (o.candidate, o.pool)
        for o in problem.options
        if o.candidate not in problem.preferences or o.pool in problem.preferences[o.candidate]
    }
    assert set(optimal.assignments) <= accepted and set(stable.assignments) <= accepted
    for c in problem.candidates:  # someone whose stated pools leave no option is told so
        if c.id in problem.preferences and not any(x[0] == c.id for x in accepted):
            had = any(o.candidate == c.id for o in problem.options)
            code = {u.candidate: u.reason_code for u in optimal.unassigned}[c.id]
            assert code == ("not_accepted" if had else "no_option")

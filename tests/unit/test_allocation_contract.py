"""The standalone JSON contract: strict parsing with French errors, deterministic output."""

from __future__ import annotations

import json

import pytest

from matching.allocation import ProblemError
from matching.allocation_contract import allocate_json, parse_problem

PROBLEM = {
    "pools": [{"id": "iml-13", "capacity": 2, "territory": "13"}, {"id": "alt-13", "capacity": 3}],
    "candidates": [
        {"id": "r1", "priority": 40, "territory": "13"},
        {"id": "r2", "priority": 25, "territory": "13"},
        {"id": "r3", "priority": 10},
        {"id": "r4"},
    ],
    "options": [
        {"candidate": "r1", "pool": "iml-13", "weight": 400},
        {"candidate": "r2", "pool": "iml-13", "weight": 250},
        {"candidate": "r2", "pool": "alt-13", "weight": 251, "consumption": 2},
        {"candidate": "r3", "pool": "iml-13", "weight": 100},
        {"candidate": "r3", "pool": "alt-13", "weight": 100, "consumption": 2},
    ],
    "pinned": [{"candidate": "r1", "pool": "iml-13"}],
    "territory_floor_alpha": 0,
    "time_limit_s": 5,
}


def test_round_trip_is_deterministic_and_complete():
    text = allocate_json(json.dumps(PROBLEM))
    assert text == allocate_json(json.dumps(PROBLEM))
    result = json.loads(text)
    assert result["status"] == "optimal"
    assert result["solver"] == "cp_sat"
    # r1 pinned in iml-13; r2 takes the alt-13 double unit (251 > 250); r3 takes the
    # last iml-13 unit: 400 + 251 + 100.
    assert result["assignments"] == [
        {"candidate": "r1", "pool": "iml-13"},
        {"candidate": "r2", "pool": "alt-13"},
        {"candidate": "r3", "pool": "iml-13"},
    ]
    assert result["objective"] == result["bound"] == 751
    assert result["unassigned"] == [
        {"candidate": "r4", "reason_code": "no_option", "reason": "Aucune option éligible."}
    ]
    assert result["envy"] == []
    assert "time_s" not in result["stats"]
    assert result["stats"]["per_pool"]["alt-13"]["used"] == 2
    assert list(result) == sorted(result)


def test_timing_on_request():
    result = json.loads(allocate_json(json.dumps(PROBLEM), include_timing=True))
    assert result["stats"]["time_s"] >= 0


def test_infeasible_pin_is_a_result_not_an_error():
    bad = dict(PROBLEM, pinned=[{"candidate": "r4", "pool": "iml-13"}])
    result = json.loads(allocate_json(json.dumps(bad)))
    assert result["status"] == "infeasible"
    assert "« r4 » n'a pas d'option éligible sur « iml-13 »" in result["message"]


def _with(**changes):
    data = json.loads(json.dumps(PROBLEM))
    for path, value in changes.items():
        target = data
        *head, last = path.split("__")
        for part in head:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is _DELETE:
            del target[int(last) if last.isdigit() else last]
        else:
            target[int(last) if last.isdigit() else last] = value
    return json.dumps(data)


_DELETE = object()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{not json", "JSON invalide"),
        ("[]", "(racine) : objet attendu"),
        (_with(pools__0__capacity=_DELETE), "pools[0].capacity : champ obligatoire manquant"),
        (_with(pools__0__colour="bleu"), "pools[0].colour : champ inconnu"),
        (_with(surprise=1), "surprise : champ inconnu"),
        (_with(options__3__pool="p9"), "options[3].pool : dispositif « p9 » inconnu"),
        (_with(options__1__candidate="zz"), "options[1].candidate : candidat « zz » inconnu"),
        (_with(options__1__weight="lourd"), "options[1].weight : entier attendu"),
        (_with(options__0__weight=2**63), "options[0].weight"),
        (_with(options__0__weight=2**61), "options[0].weight : poids"),
        (_with(options__2__consumption=-1), "options[2].consumption : consommation négative"),
        (_with(pools__1__capacity=-3), "pools[1].capacity : capacité négative"),
        (_with(pools__1__id="iml-13"), "pools[1].id : identifiant « iml-13 » en double"),
        (_with(candidates__1__id="r1"), "candidates[1].id : identifiant « r1 » en double"),
        (
            _with(territory_floor_alpha=1.5),
            "territory_floor_alpha : doit être compris entre 0 et 1",
        ),
        (_with(time_limit_s=0), "time_limit_s"),
    ],
)
def test_contract_errors_name_the_field(text, needle):
    with pytest.raises(ProblemError) as exc:
        allocate_json(text)
    assert needle in str(exc.value)


def test_parse_problem_accepts_minimal_input():
    problem = parse_problem('{"pools": [], "candidates": [], "options": []}')
    assert problem.territory_floor_alpha == 0.0 and problem.pinned == ()

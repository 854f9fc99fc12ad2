"""`aiguillage allocate-file` honours its JSON contract, as a person would call it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

PROBLEM = {
    "pools": [{"id": "logement-paris", "capacity": 1, "territory": "paris"},
              {"id": "bilans", "capacity": 2}],
    "candidates": [{"id": "a", "priority": 50, "territory": "paris"},
                   {"id": "b", "priority": 30, "territory": "paris"},
                   {"id": "c", "priority": 10, "territory": "lyon"}],
    "options": [{"candidate": "a", "pool": "logement-paris", "weight": 50},
                {"candidate": "b", "pool": "logement-paris", "weight": 30},
                {"candidate": "b", "pool": "bilans", "weight": 29},
                {"candidate": "c", "pool": "bilans", "weight": 10}],
}  # fmt: skip


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workflows.cli", "allocate-file", *args],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_solves_to_stdout_and_to_a_file(tmp_path: Path):
    problem = tmp_path / "p.json"
    problem.write_text(json.dumps(PROBLEM), encoding="utf-8")
    out = _run(str(problem))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["status"] == "optimal" and result["objective"] == 50 + 29 + 10 == result["bound"]
    assert {(a["candidate"], a["pool"]) for a in result["assignments"]} == {
        ("a", "logement-paris"), ("b", "bilans"), ("c", "bilans")}  # fmt: skip
    assert result["envy"] == [] and result["unassigned"] == []
    target = tmp_path / "r.json"
    again = _run(str(problem), "-o", str(target))
    assert again.returncode == 0 and again.stdout == ""
    assert json.loads(target.read_text(encoding="utf-8"))["assignments"] == result["assignments"]


def test_called_in_process_it_returns_its_exit_code(tmp_path: Path):
    """As the program, allocate-file ends its process at once after its output (no
    interpreter shutdown); called in a process of someone else's (a script, this test), it
    returns the exit code and that process goes on."""
    from workflows.cli import main

    problem, target = tmp_path / "p.json", tmp_path / "r.json"
    problem.write_text(json.dumps(PROBLEM), encoding="utf-8")
    assert main(["allocate-file", str(problem), "-o", str(target)]) == 0
    assert json.loads(target.read_text(encoding="utf-8"))["status"] == "optimal"
    assert main(["allocate-file", str(tmp_path / "absent.json")]) == 2


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("{not json", "JSON"),
        (
            json.dumps(
                {**PROBLEM, "options": [{"candidate": "zz", "pool": "bilans", "weight": 1}]}
            ),
            "options[0].candidate",
        ),
        (json.dumps({**PROBLEM, "pools": [{"id": "bilans", "capacity": -1}]}), "capacity"),
        (
            json.dumps(
                {**PROBLEM, "options": [{"candidate": "a", "pool": "bilans", "weight": 2**62}]}
            ),
            "weight",
        ),
        (json.dumps({**PROBLEM, "pools": [{"id": "bilans", "capacity": 2**63}]}), "capacity"),
        (
            json.dumps({**PROBLEM, "candidates": [{"id": "a", "priority": 2**64}]}),
            "priority",
        ),
        (
            json.dumps(
                {
                    **PROBLEM,
                    "options": [
                        {"candidate": "a", "pool": "bilans", "weight": 1, "consumption": 2**62}
                    ],
                }  # fmt: skip
            ),
            "consumption",
        ),
        (json.dumps({**PROBLEM, "num_workers": 1_000_000}), "num_workers"),
        ("[" * 100_000, "imbrication"),
    ],
)
def test_bad_problems_exit_2_with_a_message_naming_the_field(tmp_path: Path, text: str, field: str):
    problem = tmp_path / "bad.json"
    problem.write_text(text, encoding="utf-8")
    out = _run(str(problem))
    assert out.returncode == 2
    assert out.stdout == ""
    assert field in out.stderr and "Erreur" in out.stderr


def test_an_unwritable_output_is_a_french_error_with_exit_2(tmp_path: Path):
    problem = tmp_path / "p.json"
    problem.write_text(json.dumps(PROBLEM), encoding="utf-8")
    for target in (tmp_path, tmp_path / "missing" / "r.json"):
        out = _run(str(problem), "-o", str(target))
        assert out.returncode == 2 and "impossible d'écrire" in out.stderr
        assert "Traceback" not in out.stderr


def test_allocate_file_never_loads_pandas(tmp_path: Path):
    """CP-SAT's Python module imports pandas for helpers Aiguillage never uses (about 0.2 s
    of a 0.5 s start-up): neither allocate-file nor its second search's process loads it."""
    problem = tmp_path / "p.json"
    households = {**PROBLEM, "options": [{**o, "consumption": 2} for o in PROBLEM["options"]],
                  "pools": [{**p, "capacity": 4} for p in PROBLEM["pools"]]}  # fmt: skip
    problem.write_text(json.dumps(households), encoding="utf-8")
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "workflows.cli",
                          "allocate-file", str(problem), "-o", str(tmp_path / "r.json")],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ortools.sat.python.cp_model" in out.stderr  # the CP-SAT path was taken
    assert not re.search(r"\|\s+pandas$", out.stderr, re.MULTILINE)
    second = subprocess.run([sys.executable, "-X", "importtime", "-c", "import matching.gap_search"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert second.returncode == 0 and "ortools.sat.python.cp_model" in second.stderr
    assert not re.search(r"\|\s+pandas$", second.stderr, re.MULTILINE)

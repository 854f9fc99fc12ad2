"""The standalone JSON contract of the allocator (``aiguillage allocate-file``).

Why: partners and analysts can run the solver on their own data without the database; the
contract is strict (unknown fields, unknown or duplicate ids are errors) and every error is
a French message naming the field and the item, so a bad file is fixed in one go. The
output is sorted JSON, identical for identical input.

The commission and preference features (``"mechanism"``, a candidate's ``"preferences"``,
a pool's ``"shortlist"``, ``"exclusions"``) add their result keys (``"shortlists"``,
``"blocking_pairs"``, ``"mechanisms"``) only when the input uses them, so a file that does
not gets exactly the output it got before they existed.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from matching.allocation import (
    MAX_SHORTLIST,
    AllocationProblem,
    AllocationResult,
    Candidate,
    Exclusion,
    Option,
    Pin,
    Pool,
    ProblemError,
    solve,
)

_INT64 = 2**63 - 1
_COUNT = 10**9  # capacities, consumptions and priorities: far beyond any real pool
_ID = Field(min_length=1, max_length=200)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PoolIn(_Strict):
    id: str = _ID
    capacity: int = Field(ge=-_COUNT, le=_COUNT)  # negative: refused by the solver, in French
    territory: str | None = None
    shortlist: int | None = Field(None, ge=1, le=MAX_SHORTLIST)  # a commission's rang 1..k


class CandidateIn(_Strict):
    id: str = _ID
    priority: int = Field(0, ge=-_COUNT, le=_COUNT)
    territory: str | None = None
    preferences: list[str] | None = Field(None, min_length=1)  # absent: any pool


class OptionIn(_Strict):
    candidate: str
    pool: str
    weight: int = Field(ge=-_INT64, le=_INT64)
    consumption: int = Field(1, ge=-_COUNT, le=_COUNT)


class PinIn(_Strict):
    candidate: str
    pool: str


class ExclusionIn(_Strict):
    candidates: list[str] = Field(min_length=1)
    pools: list[str] = Field(min_length=1)


class ProblemIn(_Strict):
    pools: list[PoolIn]
    candidates: list[CandidateIn]
    options: list[OptionIn]
    pinned: list[PinIn] = []
    territory_floor_alpha: float = 0.0  # checked by the solver (French message)
    time_limit_s: float = Field(10.0, gt=0.0, le=86_400.0)
    num_workers: int = Field(1, ge=1, le=1024)  # capped at the machine's cores when solving
    assign_all: bool = False
    mechanism: Literal["optimal", "stable"] = "optimal"
    exclusions: list[ExclusionIn] = []


_MESSAGES = {
    "missing": "champ obligatoire manquant",
    "extra_forbidden": "champ inconnu",
    "int_type": "entier attendu",
    "string_type": "texte attendu",
    "float_type": "nombre attendu",
    "list_type": "liste attendue",
    "model_type": "objet attendu",
    "less_than_equal": "valeur trop grande",
    "greater_than_equal": "valeur trop petite",
    "greater_than": "valeur trop petite",
    "string_too_short": "texte vide",
    "string_too_long": "texte trop long",
    "too_short": "liste vide",
    "literal_error": "valeur inconnue (« optimal » ou « stable » attendu)",
}


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(racine)"


def parse_problem(text: str) -> AllocationProblem:
    """Parse and validate PROBLEM JSON; raises ProblemError with a French message."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProblemError(
            f"JSON invalide : ligne {exc.lineno}, colonne {exc.colno} : {exc.msg}"
        ) from exc
    except RecursionError as exc:  # the C decoder guards its own recursion
        raise ProblemError("JSON invalide : imbrication trop profonde") from exc
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise ProblemError("JSON invalide : nombre de plus de 4 300 chiffres") from exc
    try:
        data = ProblemIn.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        what = _MESSAGES.get(err["type"], err["msg"])
        raise ProblemError(f"{_path(tuple(err['loc']))} : {what}") from exc
    pool_ids = {p.id for p in data.pools}
    for i, c in enumerate(data.candidates):
        seen: set[str] = set()
        for j, pid in enumerate(c.preferences or ()):
            if pid not in pool_ids:
                raise ProblemError(
                    f"candidates[{i}].preferences[{j}] : dispositif « {pid} » inconnu"
                )
            if pid in seen:
                raise ProblemError(
                    f"candidates[{i}].preferences[{j}] : dispositif « {pid} » en double"
                )
            seen.add(pid)
    problem = AllocationProblem(
        pools=tuple(Pool(p.id, p.capacity, p.territory) for p in data.pools),
        candidates=tuple(Candidate(c.id, c.priority, c.territory) for c in data.candidates),
        options=tuple(Option(o.candidate, o.pool, o.weight, o.consumption) for o in data.options),
        pinned=tuple(Pin(p.candidate, p.pool) for p in data.pinned),
        territory_floor_alpha=data.territory_floor_alpha,
        time_limit_s=data.time_limit_s,
        num_workers=data.num_workers,
        assign_all=data.assign_all,
        mechanism=data.mechanism,
        preferences={c.id: tuple(c.preferences) for c in data.candidates if c.preferences},
        shortlist={p.id: p.shortlist for p in data.pools if p.shortlist is not None},
        exclusions=tuple(Exclusion(tuple(e.candidates), tuple(e.pools)) for e in data.exclusions),
    )
    return problem


def _uses(problem: AllocationProblem | None, result: AllocationResult) -> tuple[bool, bool]:
    """(mechanisms, shortlists): whether the result carries those keys. From the problem
    when given (an infeasible run of a file that asks for them still has the keys)."""
    if problem is None:
        return "mechanisms" in result.stats, bool(result.shortlists)
    return bool(problem.mechanism != "optimal" or problem.preferences), bool(problem.shortlist)


def result_to_dict(
    result: AllocationResult,
    *,
    include_timing: bool = False,
    problem: AllocationProblem | None = None,
) -> dict[str, Any]:
    """RESULT as plain data; timing is left out by default so the output is reproducible.
    The keys of the commission and preference features appear only when ``problem`` uses
    them (without ``problem``: when the result has them)."""
    stats = dict(result.stats)
    if not include_timing:
        stats.pop("time_s", None)
    mechanisms = stats.pop("mechanisms", None)
    uses_mechanisms, uses_shortlists = _uses(problem, result)
    extra: dict[str, Any] = {}
    if uses_mechanisms:
        extra["mechanisms"] = mechanisms
        extra["blocking_pairs"] = [{"candidate": c, "pool": p} for c, p in result.blocking_pairs]
    if uses_shortlists:
        extra["shortlists"] = {
            pool: [list(unit) for unit in units] for pool, units in result.shortlists.items()
        }
    return {
        **extra,
        "status": result.status,
        "objective": result.objective,
        "bound": result.bound,
        "solver": result.solver,
        "message": result.message,
        "assignments": [{"candidate": c, "pool": p} for c, p in result.assignments],
        "unassigned": [
            {"candidate": u.candidate, "reason_code": u.reason_code, "reason": u.reason}
            for u in result.unassigned
        ],
        "envy": [
            {
                "candidate": e.candidate,
                "candidate_priority": e.candidate_priority,
                "pool": e.pool,
                "envied": e.envied,
                "envied_priority": e.envied_priority,
                "cause": e.cause,
            }
            for e in result.envy
        ],
        "explanations": result.explanations,
        "stats": stats,
    }


def allocate_json(text: str, *, include_timing: bool = False) -> str:
    """Solve a PROBLEM JSON text and return the RESULT JSON text (sorted keys)."""
    problem = parse_problem(text)
    result = solve(problem)
    return json.dumps(
        result_to_dict(result, include_timing=include_timing, problem=problem),
        ensure_ascii=False,
        sort_keys=True,
        indent=2,
    )

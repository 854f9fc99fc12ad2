"""The standalone JSON contract of the allocator (``aiguillage allocate-file``).

Why: partners and analysts can run the solver on their own data without the database; the
contract is strict (unknown fields, unknown or duplicate ids are errors) and every error is
a French message naming the field and the item, so a bad file is fixed in one go. The
output is sorted JSON, identical for identical input.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from matching.allocation import (
    AllocationProblem,
    AllocationResult,
    Candidate,
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


class CandidateIn(_Strict):
    id: str = _ID
    priority: int = Field(0, ge=-_COUNT, le=_COUNT)
    territory: str | None = None


class OptionIn(_Strict):
    candidate: str
    pool: str
    weight: int = Field(ge=-_INT64, le=_INT64)
    consumption: int = Field(1, ge=-_COUNT, le=_COUNT)


class PinIn(_Strict):
    candidate: str
    pool: str


class ProblemIn(_Strict):
    pools: list[PoolIn]
    candidates: list[CandidateIn]
    options: list[OptionIn]
    pinned: list[PinIn] = []
    territory_floor_alpha: float = 0.0  # checked by the solver (French message)
    time_limit_s: float = Field(10.0, gt=0.0, le=86_400.0)
    num_workers: int = Field(1, ge=1, le=1024)  # capped at the machine's cores when solving
    assign_all: bool = False


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
    problem = AllocationProblem(
        pools=tuple(Pool(p.id, p.capacity, p.territory) for p in data.pools),
        candidates=tuple(Candidate(c.id, c.priority, c.territory) for c in data.candidates),
        options=tuple(Option(o.candidate, o.pool, o.weight, o.consumption) for o in data.options),
        pinned=tuple(Pin(p.candidate, p.pool) for p in data.pinned),
        territory_floor_alpha=data.territory_floor_alpha,
        time_limit_s=data.time_limit_s,
        num_workers=data.num_workers,
        assign_all=data.assign_all,
    )
    return problem


def result_to_dict(result: AllocationResult, *, include_timing: bool = False) -> dict[str, Any]:
    """RESULT as plain data; timing is left out by default so the output is reproducible."""
    stats = dict(result.stats)
    if not include_timing:
        stats.pop("time_s", None)
    return {
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
    result = solve(parse_problem(text))
    return json.dumps(
        result_to_dict(result, include_timing=include_timing),
        ensure_ascii=False,
        sort_keys=True,
        indent=2,
    )

"""``aiguillage allocate-file``: the standalone solver, started without the rest of the CLI.

Why a module of its own: a partner runs the solver on a file, often on small problems; the
full command line (typer, settings, the engine) and the solver's optional dependencies cost
about 2 s of imports before the first line of work. This path imports only the JSON
contract and the solver (numpy, OR-Tools), and answers in French with the CLI's exit codes:
0 solved, 2 bad input (the file, its JSON, a field, the output path).
"""

from __future__ import annotations

import sys
from pathlib import Path

USAGE = (
    "Usage : aiguillage allocate-file PROBLEME.json [-o RESULTAT.json]\n\n"
    "Résout un problème d'attribution autonome (contrat JSON documenté dans le README).\n"
    "  -o, --output FICHIER  fichier résultat (sinon sortie standard)\n"
)


def _fail(message: str) -> int:
    sys.stderr.write(f"Erreur : {message}\n")
    return 2


def run(problem: Path, output: Path | None) -> int:
    """Solve ``problem`` and write the result; returns the exit code."""
    from matching.allocation import ProblemError
    from matching.allocation_contract import allocate_json

    try:
        text_in = problem.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return _fail(f"impossible de lire « {problem} » : {getattr(exc, 'strerror', None) or exc}")
    try:
        result = allocate_json(text_in)
    except ProblemError as exc:
        return _fail(str(exc))
    if output is None:
        sys.stdout.write(result + "\n")
        return 0
    try:
        output.write_text(result + "\n", encoding="utf-8")
    except OSError as exc:
        return _fail(f"impossible d'écrire « {output} » : {exc.strerror or exc}")
    return 0


def main(argv: list[str]) -> int:
    """The arguments after ``allocate-file``."""
    if not argv or argv[0] in ("-h", "--help"):
        (sys.stdout if argv else sys.stderr).write(USAGE)
        return 0 if argv else 2
    problem: Path | None = None
    output: Path | None = None
    rest = list(argv)
    while rest:
        arg = rest.pop(0)
        if arg in ("-o", "--output"):
            if not rest:
                return _fail(f"l'option {arg} attend un nom de fichier")
            output = Path(rest.pop(0))
        elif arg.startswith("--output="):
            output = Path(arg.split("=", 1)[1])
        elif arg.startswith("-") and arg != "-":
            return _fail(f"option inconnue « {arg} »\n\n{USAGE}")
        elif problem is None:
            problem = Path(arg)
        else:
            return _fail(f"argument en trop « {arg} »")
    if problem is None:
        return _fail("indiquez le fichier du problème")
    return run(problem, output)

"""The ``aiguillage`` entry point: dispatch to the commands, importing only what one needs.

Why a launcher: ``allocate-file`` must start in well under a second (a partner solving a small
file), so it never loads typer, the settings or the engine; every other command goes to the
typer application of ``workflows.commands``. Exit codes everywhere: 0 done, 1 refused, 2 bad
input.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, NoReturn


def main(argv: list[str] | None = None) -> int:
    """Runs a command; ``argv`` None: the process's own arguments (the program itself)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["allocate-file"]:
        from workflows.allocate_file import main as allocate_file

        code = allocate_file(args[1:])
        if argv is None:
            exit_now(code)
        return code
    app = _application()
    try:
        app(args=args, prog_name="aiguillage")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def exit_now(code: int) -> NoReturn:
    """Ends the process at once, once its output is flushed: the interpreter's own shutdown
    (every module's teardown: OR-Tools, numpy, pydantic) took about 0.04 s of each
    ``allocate-file`` run, measured on 100–200-candidate files, and nothing is left to do
    then: the result is written and closed, the second search has ended or been killed."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(code)


def _application() -> Any:
    """The typer application with every command group, ``retention`` included."""
    from workflows.cli_retention import register
    from workflows.commands import app

    register(app)
    __import__("workflows.cli_services").cli_services.register(app)
    __import__("workflows.cli_replay").cli_replay.register(app)
    return app


def __getattr__(name: str) -> Any:
    """``from workflows.cli import app`` (tests, plugins) still finds the typer application."""
    if name == "app":
        return _application()
    raise AttributeError(name)


if __name__ == "__main__":
    sys.exit(main())

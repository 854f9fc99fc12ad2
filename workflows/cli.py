"""The ``aiguillage`` entry point: dispatch to the commands, importing only what one needs.

Why a launcher: ``allocate-file`` must start in well under a second (a partner solving a small
file), so it never loads typer, the settings or the engine; every other command goes to the
typer application of ``workflows.commands``. Exit codes everywhere: 0 done, 1 refused, 2 bad
input.
"""

from __future__ import annotations

import sys
from typing import Any


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["allocate-file"]:
        from workflows.allocate_file import main as allocate_file

        return allocate_file(args[1:])
    app = _application()
    try:
        app(args=args, prog_name="aiguillage")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


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

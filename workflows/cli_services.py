"""``aiguillage import services FILE`` and ``aiguillage services generate FILE``.

Why a module of its own: the commands register themselves on the typer application (like
``cli_retention``), so the launcher stays small. ``import services`` is all or nothing, like
``import salaries``: exit 0 done, 2 a bad file (the French report on stderr, nothing
written). ``services generate`` writes a data·inclusion export built from the schema
package's own models (``partners.data_inclusion_fixtures``) — for the demo and the benches.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

services_app = typer.Typer(
    help="Services du référentiel national data·inclusion.", no_args_is_help=True
)

TodayOpt = Annotated[
    str | None, typer.Option("--today", help="Jour de référence AAAA-MM-JJ (rejeu d'un scénario).")
]
NowOpt = Annotated[
    str | None,
    typer.Option("--now", help="Instant de référence AAAA-MM-JJTHH:MM (heure de Paris)."),
]


def _fail(message: str, code: int) -> None:
    typer.echo(f"Erreur : {message}", err=True)
    raise typer.Exit(code)


def _clock(today: str | None, now: str | None):  # type: ignore[no-untyped-def]
    from engine.domain.clock import parse_clock

    try:
        return parse_clock(today, now)
    except ValueError as exc:
        _fail(str(exc), 2)
        raise AssertionError from exc  # unreachable


def _database():  # type: ignore[no-untyped-def]
    from engine.store.db import Database
    from engine.store.settings import load_settings

    return Database(load_settings().database_url)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        _fail(f"impossible de lire « {path} » : {exc.strerror}", 2)
        raise AssertionError from exc  # unreachable


def import_services_cmd(
    file: Annotated[
        Path, typer.Argument(help="Export des services data·inclusion (.json ou .csv).")
    ],
    structures: Annotated[
        Path | None,
        typer.Option("--structures", help="Export des structures (.json ou .csv), facultatif."),
    ] = None,
    today: TodayOpt = None,
    now: NowOpt = None,
) -> None:
    """Importe les services data·inclusion (tout ou rien ; réimporter ne change rien)."""
    from engine.directory.services_import import import_services

    data = _read(file)
    extra = _read(structures) if structures is not None else None
    clock = _clock(today, now)
    db = _database()
    t0 = time.perf_counter()
    try:
        outcome = import_services(
            db,
            data,
            filename=file.name,
            clock=clock,
            structures=extra,
            structures_filename=structures.name if structures is not None else "structures",
        )
    finally:
        db.dispose()
    for line in outcome.lines_fr():
        typer.echo(line, err=not outcome.ok)
    if not outcome.ok:
        raise typer.Exit(2)
    typer.echo(f"Durée : {time.perf_counter() - t0:.1f} s.")


@services_app.command("generate")
def generate_cmd(
    file: Annotated[Path, typer.Argument(help="Fichier à écrire (.json ou .csv).")],
    count: Annotated[int, typer.Option("--count", help="Nombre de services.")] = 2_000,
    seed: Annotated[int, typer.Option("--seed", help="Graine (déterministe).")] = 42,
    structures: Annotated[
        Path | None, typer.Option("--structures", help="Écrit aussi le fichier des structures.")
    ] = None,
    today: TodayOpt = None,
    now: NowOpt = None,
) -> None:
    """Écrit un export data·inclusion synthétique (valide) sur les territoires de la base."""
    from engine.directory.services_import import territory_departments
    from engine.store.db import unit_of_work
    from partners.data_inclusion_fixtures import (
        generate_services,
        services_csv,
        services_json,
        structures_json,
    )

    if not 1 <= count <= 1_000_000:
        _fail("--count va de 1 à 1 000 000", 2)
    clock = _clock(today, now)
    db = _database()
    try:
        with unit_of_work(db) as session:
            territories = territory_departments(session)
    finally:
        db.dispose()
    if not territories:
        _fail("la base n'a aucun territoire : lancez d'abord « aiguillage seed »", 1)
    services = generate_services(count, seed=seed, today=clock.today(), territories=territories)
    body = services_csv(services) if file.suffix.lower() == ".csv" else services_json(services)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(body)
    if structures is not None:
        structures.write_bytes(structures_json(services, today=clock.today()))
    typer.echo(f"{count} services data·inclusion écrits dans {file} (graine {seed}).")


def register(app: typer.Typer) -> None:
    """Add ``import services`` and ``services`` to the application once (idempotent)."""
    if any(group.name == "services" for group in app.registered_groups):
        return
    from workflows.commands import import_app

    import_app.command("services")(import_services_cmd)
    app.add_typer(services_app, name="services")

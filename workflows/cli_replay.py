"""``aiguillage allocation replay --year 2024 --policy now|hold``: a year of counted slots replayed.

Why a module of its own: the command registers itself on the typer application (like
``cli_services``), so the launcher stays small. It reads the year through the engine's usual
settings (``AIGUILLAGE_DATABASE_URL``, else ``var/``), replays it under the policy and the
hindsight optimum (``engine.allocation.replay``), and prints, in French, the total priority
served, the people served, the mean and worst waits and the ratio to the hindsight optimum.
Nothing is written. Exit codes: 0 done, 2 bad input or a database without that year.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

allocation_app = typer.Typer(
    help="Attribution des places comptées : analyses.", no_args_is_help=True
)

PROGRESS_EVERY_S = 2.0


def _fail(message: str, code: int) -> None:
    typer.echo(f"Erreur : {message}", err=True)
    raise typer.Exit(code)


@allocation_app.command("replay")
def replay_cmd(
    year: Annotated[
        int, typer.Option("--year", help="Année simulée à rejouer (par exemple 2024).")
    ],
    policy: Annotated[
        str,
        typer.Option(
            "--policy",
            help="now : toute place libre est attribuée chaque lundi (fonctionnement actuel) ; "
            "hold : chaque place est attribuée ou gardée selon les arrivées et départs prévus.",
        ),
    ] = "hold",
    max_hold_weeks: Annotated[
        int,
        typer.Option("--max-hold-weeks", help="Durée maximale de garde d'une place (semaines)."),
    ] = 8,
    wait_limit_weeks: Annotated[
        int,
        typer.Option(
            "--wait-limit-weeks",
            help="Aucune place n'est gardée si une personne éligible attend depuis plus longtemps.",
        ),
    ] = 26,
    horizon_weeks: Annotated[
        int, typer.Option("--horizon-weeks", help="Horizon de la prévision (semaines).")
    ] = 26,
    history_weeks: Annotated[
        int,
        typer.Option("--history-weeks", help="Semaines passées qui servent à la prévision."),
    ] = 13,
    scenarios: Annotated[
        int, typer.Option("--scenarios", help="Scénarios d'arrivées tirés pour chaque décision.")
    ] = 16,
    idle_points: Annotated[
        int,
        typer.Option("--idle-points", help="Coût, en points, d'une semaine de place vide."),
    ] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Graine (déterministe).")] = 42,
    units: Annotated[
        str,
        typer.Option(
            "--units",
            help="Dates d'arrivée des places : random (tirées, graine) ou even (régulières).",
        ),
    ] = "random",
) -> None:
    """Rejoue une année : places données tout de suite ou gardées, face à l'optimum a posteriori."""
    if policy not in ("now", "hold"):
        _fail(f"--policy : « {policy} » inconnue (attendu : now ou hold)", 2)
    if not 2000 <= year <= 2100:
        _fail(f"--year : année hors de portée ({year})", 2)
    for name, value, lo in (
        ("--max-hold-weeks", max_hold_weeks, 0),
        ("--wait-limit-weeks", wait_limit_weeks, 0),
        ("--horizon-weeks", horizon_weeks, 0),
        ("--history-weeks", history_weeks, 1),
        ("--scenarios", scenarios, 1),
        ("--idle-points", idle_points, 0),
    ):
        if not lo <= value <= 1000:
            _fail(f"{name} : valeur hors de portée ({value}, de {lo} à 1000)", 2)
    if units not in ("random", "even"):
        _fail(f"--units : « {units} » inconnu (attendu : random ou even)", 2)

    from engine.allocation.replay import ReplayUnavailable, run_replay
    from engine.store.db import Database
    from engine.store.settings import load_settings
    from matching.replay import HoldParams

    params = HoldParams(
        max_hold_days=7 * max_hold_weeks,
        wait_limit_days=7 * wait_limit_weeks,
        horizon_days=7 * horizon_weeks,
        history_days=7 * history_weeks,
        min_history_days=min(28, 7 * history_weeks),
        scenarios=scenarios,
        idle_points=idle_points,
        seed=seed,
    )
    last = [time.perf_counter()]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] >= PROGRESS_EVERY_S or done == total:
            last[0] = now
            typer.echo(f"  … semaine {done} / {total} rejouée", err=True)

    db = Database(load_settings().database_url)
    try:
        report = run_replay(
            db, year=year, policy=policy, params=params, seed=seed, units=units, progress=progress
        )
    except ReplayUnavailable as exc:
        _fail(str(exc), 2)
        return
    finally:
        db.dispose()
    for line in report.lines_fr():
        typer.echo(line)


def register(app: typer.Typer) -> None:
    """Add ``allocation replay`` to the application once (idempotent)."""
    if any(group.name == "allocation" for group in app.registered_groups):
        return
    app.add_typer(allocation_app, name="allocation")

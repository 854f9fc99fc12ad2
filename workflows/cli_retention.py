"""``aiguillage retention …``: run the data-lifetime cycle, show and set the policy (French).

Why a module of its own: the retention commands register themselves on the typer
application (like ``cli_web``), so the launcher stays small and ``commands`` untouched.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

retention_app = typer.Typer(
    help="Conservation des données : avis, anonymisation, purge des journaux.",
    no_args_is_help=True,
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


def _settings():  # type: ignore[no-untyped-def]
    from engine.retention.policy import RetentionError, check_settings
    from engine.store.settings import load_settings

    settings = load_settings()
    try:
        check_settings(settings)
    except RetentionError as exc:
        _fail(exc.message, 2)
    return settings


@retention_app.command("run")
def run_cmd(
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Simulation : affiche ce qui serait fait, sans rien changer."
        ),
    ] = False,
    no_prefect: Annotated[bool, typer.Option(help="Sans Prefect (appel direct).")] = False,
    today: TodayOpt = None,
    now: NowOpt = None,
) -> None:
    """Avise les CIP/ESP, anonymise les dossiers arrivés à échéance, purge les journaux."""
    from engine.domain.clock import parse_clock

    try:
        clock = parse_clock(today, now)
    except ValueError as exc:
        _fail(str(exc), 2)
        return
    settings = _settings()
    t0 = time.perf_counter()
    from engine.retention.run import RetentionReport

    if no_prefect:
        from engine.retention.run import run_retention
        from engine.store.db import Database

        db = Database(settings.database_url)
        try:
            report = run_retention(db, settings, clock=clock, dry_run=dry_run)
        finally:
            db.dispose()
    else:
        from workflows.commands import one_shot_flow
        from workflows.flows import retention_flow

        instant = None if clock.anchor is None else clock.now().isoformat()
        with one_shot_flow():
            report = RetentionReport(**retention_flow(dry_run=dry_run, now=instant))
        report.seconds = time.perf_counter() - t0
    for line in report.lines_fr():
        typer.echo(line)


@retention_app.command("policy")
def policy_cmd() -> None:
    """Affiche les durées de conservation (national, territoires, journaux)."""
    from engine.retention.policy import territory_retentions
    from engine.store.db import Database, unit_of_work

    settings = _settings()
    db = Database(settings.database_url)
    try:
        with unit_of_work(db) as session:
            territories = territory_retentions(session)
    finally:
        db.dispose()
    typer.echo(
        f"Dossiers : {settings.retention_months} mois après le dernier contact ou la sortie "
        f"(le plus tardif), avis aux CIP/ESP {settings.retention_notice_days} jours avant."
    )
    for t in territories:
        if t.months is not None:
            typer.echo(f"  {t.name} ({t.code}) : {t.months} mois")
    if all(t.months is None for t in territories):
        typer.echo("  Aucun territoire n'a de durée propre.")
    typer.echo(
        f"Journal d'accès : {settings.retention_access_log_months} mois ; tentatives de "
        f"connexion : {settings.retention_login_attempt_days} jours ; courriels envoyés ou mis "
        f"de côté : {settings.retention_outbox_days} jours."
    )


@retention_app.command("set-territory")
def set_territory_cmd(
    territory: Annotated[str, typer.Argument(help="Code du territoire (par exemple paris).")],
    months: Annotated[
        str, typer.Argument(help="Durée en mois (1 à 36), ou « defaut » pour la durée nationale.")
    ],
    today: TodayOpt = None,
    now: NowOpt = None,
) -> None:
    """Fixe la durée de conservation des dossiers d'un territoire (1 à 36 mois)."""
    from engine.domain.clock import parse_clock
    from engine.domain.errors import DomainError
    from engine.retention.policy import set_territory_retention
    from engine.store.db import Database, unit_of_work

    try:
        clock = parse_clock(today, now)
    except ValueError as exc:
        _fail(str(exc), 2)
        return
    settings = _settings()
    db = Database(settings.database_url)
    try:
        with unit_of_work(db) as session:
            done = set_territory_retention(
                session, None, territory, months, clock=clock,
                actor_label="système : ligne de commande",
            )  # fmt: skip
    except DomainError as exc:
        _fail(exc.message, 2)
        return
    finally:
        db.dispose()
    value = f"{done.months} mois" if done.months is not None else "durée nationale"
    typer.echo(f"Conservation des dossiers de {done.name} : {value}.")


def register(app: typer.Typer) -> None:
    """Add ``retention`` to the application once (idempotent)."""
    if any(group.name == "retention" for group in app.registered_groups):
        return
    app.add_typer(retention_app, name="retention")

"""The ``aiguillage`` commands (typer): set-up, data, flows and the web server.

Why typer: subcommands with French help for the people who run the network's server, and
exit codes that scripts (make demo, CI) can rely on: 0 done, 1 refused, 2 bad input.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from engine.store.settings import Settings, load_settings
from workflows.flows_cli import flows_app

app = typer.Typer(
    help="Aiguillage : orientation des freins et attribution des places.", no_args_is_help=True
)
db_app = typer.Typer(help="Base de données.", no_args_is_help=True)
import_app = typer.Typer(help="Imports de fichiers.", no_args_is_help=True)
users_app = typer.Typer(help="Comptes utilisateurs.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(users_app, name="users")
app.add_typer(flows_app, name="flows")


def _settings() -> Settings:
    return load_settings()


def _database(settings: Settings | None = None):  # type: ignore[no-untyped-def]
    from engine.store.db import Database

    return Database((settings or _settings()).database_url)


@contextmanager
def one_shot_flow() -> Iterator[None]:
    """A flow run from a command in a terminal: no heartbeat thread.

    Why: Prefect's heartbeats tell a server that a long flow run is still alive (served
    deployments and workers keep them); for a run that lives as long as the command, the
    terminal already shows a crash, and stopping the thread cost up to a second at the end
    of every command (measured on `route`: 0.7 s of 5)."""
    from prefect.settings import temporary_settings

    with temporary_settings(updates={"flows.heartbeat_frequency": None}):
        yield


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"Erreur : {message}", err=True)
    raise typer.Exit(code)


# Every command that acts "today" takes the same two options, so any scenario replays on any
# date: --today D (D at 09:00, Paris time, then running) or --now D T (an exact instant).
TodayOpt = Annotated[
    str | None, typer.Option("--today", help="Jour de référence AAAA-MM-JJ (rejeu d'un scénario).")
]
NowOpt = Annotated[
    str | None,
    typer.Option("--now", help="Instant de référence AAAA-MM-JJTHH:MM (heure de Paris)."),
]


def _clock(today: str | None, now: str | None):  # type: ignore[no-untyped-def]
    """The command's one Clock, built at start-up (French error, exit 2, on a bad value)."""
    from engine.domain.clock import parse_clock

    try:
        return parse_clock(today, now)
    except ValueError as exc:
        _fail(str(exc), 2)
        raise AssertionError from exc  # unreachable: _fail exits


def _now_param(clock) -> str | None:  # type: ignore[no-untyped-def]
    """The clock as a flow parameter (an ISO instant, or None for the system clock)."""
    return None if clock.anchor is None else clock.now().isoformat()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Crée ou met à jour le schéma de la base."""
    from engine.store.migrate import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    typer.echo("Base à jour.")


@db_app.command("check")
def db_check() -> None:
    """Vérifie que les migrations correspondent aux modèles."""
    from engine.store.migrate import check

    check(_settings().database_url)
    typer.echo("Migrations à jour.")


@app.command()
def seed(
    scale: Annotated[float, typer.Option(help="Multiplie le nombre de personnes.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Graine du générateur (déterministe).")] = 42,
    reset: Annotated[bool, typer.Option(help="Efface la base avant de générer.")] = False,
    entrants: Annotated[
        bool,
        typer.Option(
            help="Réseau au 1er janvier : garde les entrées de l'année pour « simulate »."
        ),
    ] = False,
    today: TodayOpt = None,
    now: NowOpt = None,
) -> None:
    """Génère le réseau synthétique calibré sur le rapport d'activité 2024."""
    from engine.network.seed import SeedError, seed_network
    from engine.network.seed import reset as reset_db

    clock = _clock(today, now)
    db = _database()
    if reset:
        reset_db(db)
    t0 = time.perf_counter()
    try:
        summary = seed_network(db, scale=scale, seed=seed, clock=clock, entrants=entrants)
    except SeedError as exc:
        _fail(str(exc))
        return
    typer.echo(
        f"Réseau synthétique généré en {time.perf_counter() - t0:.1f} s (échelle "
        f"{scale:g}, graine {seed})."
    )
    for line in summary.lines_fr():
        typer.echo(line)


@app.command()
def summary() -> None:
    """Affiche un résumé du réseau et des orientations."""
    from engine.network.summary import network_summary
    from engine.store.db import unit_of_work

    with unit_of_work(_database()) as session:
        for line in network_summary(session):
            typer.echo(line)


@import_app.command("salaries")
def import_salaries_cmd(
    file: Annotated[Path, typer.Argument(help="Fichier CSV exporté par le chantier.")],
    today: TodayOpt = None,
    now: NowOpt = None,
) -> None:
    """Importe des salarié·es et leurs freins (tout ou rien ; réimporter ne change rien)."""
    from engine.intake.salaries import import_salaries

    try:
        data = file.read_bytes()
    except OSError as exc:
        _fail(f"impossible de lire « {file} » : {exc.strerror}", 2)
        return
    from matching.rules import load_rules

    rules = load_rules(_settings().rules_file)
    outcome = import_salaries(_database(), data, clock=_clock(today, now), rules=rules)
    for line in outcome.lines_fr():
        typer.echo(line, err=not outcome.ok)
    if not outcome.ok:
        raise typer.Exit(2)


@app.command()
def route(
    chunk_size: Annotated[int, typer.Option(help="Freins par transaction.")] = 100_000,
    no_prefect: Annotated[bool, typer.Option(help="Sans Prefect (appel direct).")] = False,
    today: TodayOpt = None,
    now: NowOpt = None,
) -> None:
    """Oriente chaque nouveau frein vers la bonne personne et propose des partenaires."""
    clock = _clock(today, now)
    t0 = time.perf_counter()
    if no_prefect:
        from engine.intake.run import run_intake

        settings = _settings()
        result = run_intake(
            _database(settings), settings, chunk_size=chunk_size, clock=clock
        ).as_dict()
    else:
        from workflows.flows import intake_flow

        with one_shot_flow():
            result = intake_flow(chunk_size=chunk_size, now=_now_param(clock))
    elapsed = time.perf_counter() - t0
    kinds = result["by_owner_kind"]
    doms = result["by_domain"]
    typer.echo(f"Orientation des nouveaux freins terminée en {elapsed:.1f} s.")
    typer.echo(f"Orientés : {result['routed']} ; déjà orientés (ignorés) : {result['skipped']}.")
    typer.echo(
        "Par domaine : "
        + ", ".join(
            f"{label} {doms.get(d, 0)}"
            for d, label in (
                ("emploi", "emploi"),
                ("sante", "santé"),
                ("logement", "logement"),
                ("transverse", "transverse"),
            )
        )
    )
    typer.echo(
        f"Confiés aux chargé·es : {kinds.get('officer', 0)} ; à la coordination : "
        f"{kinds.get('coordinator', 0)} ; "
        f"file nationale PHC : {kinds.get('national', 0)} ; directement à un partenaire : "
        f"{kinds.get('partner', 0)}."
    )
    typer.echo(
        f"Messages préparés : {result['owners_notified']} aux personnes chargées, "
        f"{result['partner_messages']} aux partenaires."
    )


@app.command("demo-activity")
def demo_activity(
    seed: Annotated[int, typer.Option(help="Graine.")] = 42,
    today: TodayOpt = None,
    now: NowOpt = None,
) -> None:
    """Simule une première semaine de travail (mises en attente, orientations) pour la démo."""
    from engine.network.demo import simulate_activity

    clock = _clock(today, now)
    settings = _settings()
    done = simulate_activity(_database(settings), settings, seed=seed, clock=clock)
    typer.echo(
        f"Activité simulée : {done['waitlisted']} orientations mises en attente de place, "
        f"{done['referred']} orientées vers un partenaire."
    )


@app.command()
def simulate(
    year: Annotated[int, typer.Option(help="Année à rejouer (par exemple 2024).")],
    seed: Annotated[int, typer.Option(help="Graine (déterministe).")] = 42,
    today: TodayOpt = None,
    now: NowOpt = None,
) -> None:
    """Rejoue une année de travail (chargé·es, partenaires, CIP/ESP) : sorties, logement, santé."""
    from engine.network.simulate import SimulationError, simulate_year

    clock = _clock(today, now)
    if not 2000 <= year <= 2100:
        _fail(f"--year : année hors de portée ({year})", 2)
    settings = _settings()
    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        typer.echo(f"  … {done} / {total} étapes rejouées", err=True)

    try:
        summary = simulate_year(
            _database(settings), settings, year=year, clock=clock, seed=seed, progress=progress
        )
    except SimulationError as exc:
        _fail(str(exc), 2)
        return
    typer.echo(f"Simulation terminée en {time.perf_counter() - t0:.1f} s.")
    for line in summary.lines_fr():
        typer.echo(line)


@app.command()
def report(
    year: Annotated[int, typer.Option(help="Année du rapport.")],
    territory: Annotated[str | None, typer.Option(help="Code du territoire.")] = None,
    programme: Annotated[str | None, typer.Option(help="cvg ou phc.")] = None,
    format: Annotated[str, typer.Option("--format", help="text, json, csv ou xlsx.")] = "text",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Fichier.")] = None,
) -> None:
    """Les indicateurs d'impact et de pilotage d'une année, comme le rapport d'activité."""
    from engine.reporting.report import FORMATS, ReportError, build_report, render

    if format not in FORMATS:
        _fail(f"--format : « {format} » inconnu (attendu : {', '.join(FORMATS)})", 2)
    if format == "xlsx" and output is None:
        _fail("--format xlsx : précisez le fichier de sortie avec -o", 2)
    try:
        body = render(
            build_report(_database(), year=year, territory=territory, programme=programme),
            format,
        )
    except ReportError as exc:
        _fail(str(exc), 2)
        return
    if output is None:
        typer.echo(body.decode(), nl=False)
        return
    try:
        output.write_bytes(body)
    except OSError as exc:
        _fail(f"impossible d'écrire « {output} » : {exc.strerror or exc}", 2)
    typer.echo(f"Rapport {year} écrit dans {output}.")


@app.command()
def allocate(
    territory: Annotated[
        str | None, typer.Option(help="Code du territoire (tous par défaut).")
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Simulation : rien n'est enregistré.")] = False,
    alpha: Annotated[
        float, typer.Option(help="Plancher d'équité entre territoires (0 à 1).")
    ] = 0.8,
    no_prefect: Annotated[bool, typer.Option(help="Sans Prefect (appel direct).")] = False,
    today: TodayOpt = None,
    now: NowOpt = None,
) -> None:
    """Propose les places comptées aux personnes en attente (à valider par la coordination)."""
    if not 0 <= alpha <= 1:
        _fail("--alpha doit être compris entre 0 et 1", 2)
    from engine.allocation.run import AllocationBusy
    from engine.domain.errors import Refused

    clock = _clock(today, now)
    try:
        if no_prefect:
            from engine.allocation.run import run_allocation

            settings = _settings()
            result = run_allocation(
                _database(settings),
                settings,
                territory=territory,
                dry_run=dry_run,
                alpha=alpha,
                clock=clock,
            ).as_dict()
        else:
            from workflows.flows import allocation_flow

            with one_shot_flow():
                result = allocation_flow(
                    territory=territory, dry_run=dry_run, alpha=alpha, now=_now_param(clock)
                )
    except AllocationBusy as exc:
        _fail(str(exc))
        return
    except Refused as exc:
        _fail(str(exc), 2)
        return
    from engine.allocation.review import territory_names
    from engine.allocation.run import AllocationReport

    with _database(_settings()).sessions() as session:
        names = territory_names(session)
    for line in AllocationReport(**result).lines_fr(names):
        typer.echo(line)


@app.command("allocate-file")
def allocate_file(
    problem: Annotated[Path, typer.Argument(help="Problème d'attribution au format JSON.")],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Fichier résultat (sinon sortie standard)."),
    ] = None,
) -> None:
    """Résout un problème d'attribution autonome (contrat JSON documenté dans le README)."""
    from workflows.allocate_file import run

    code = run(problem, output)
    if code:
        raise typer.Exit(code)


@app.command()
def snapshots(
    year: Annotated[int | None, typer.Option(help="Année (l'année en cours par défaut).")] = None,
    no_prefect: Annotated[bool, typer.Option(help="Sans Prefect (appel direct).")] = False,
    today: TodayOpt = None,
    now: NowOpt = None,
) -> None:
    """Calcule les instantanés d'indicateurs (année, mois, territoires) que lisent les pages."""
    clock = _clock(today, now)
    if year is not None and not 2000 <= year <= 2100:
        _fail(f"--year : année hors de portée ({year})", 2)
    t0 = time.perf_counter()
    if no_prefect:
        from engine.reporting.report import write_snapshots

        result = write_snapshots(_database(), year=year or clock.today().year, clock=clock)
    else:
        from workflows.flows import reporting_flow

        with one_shot_flow():
            result = reporting_flow(year=year, now=_now_param(clock))
    typer.echo(
        f"Instantanés écrits en {time.perf_counter() - t0:.1f} s : {result['rows_written']} "
        f"chiffres ; périodes closes conservées : {result['periods_kept']}."
    )


@app.command()
def notify(
    chunk: Annotated[int, typer.Option(help="Messages par connexion SMTP.")] = 200,
    no_prefect: Annotated[bool, typer.Option(help="Sans Prefect (appel direct).")] = False,
    today: TodayOpt = None,
    now: NowOpt = None,
) -> None:
    """Écrit les relances et échéances dues, puis envoie les messages en attente."""
    clock = _clock(today, now)
    if no_prefect:
        from engine.deadlines import write_due_reminders
        from engine.outbox.digest import write_due_digests
        from engine.outbox.relay import drain

        settings = _settings()
        db = _database(settings)
        written = dict(write_due_reminders(db, settings, clock=clock))
        written["daily_digest"] = write_due_digests(db, settings, clock=clock)
        result = {
            "written": written,
            "relay": drain(db, settings, chunk=chunk, clock=clock).as_dict(),
        }
    else:
        from workflows.flows import notifications_flow

        with one_shot_flow():
            result = notifications_flow(chunk=chunk, now=_now_param(clock))
    w, r = result["written"], result["relay"]
    typer.echo(
        f"Échéances : {w.get('triage_due_soon', 0)} qualifications bientôt dues, "
        f"{w.get('triage_overdue', 0)} en retard, "
        f"{w.get('triage_escalation', 0)} signalées à la coordination, "
        f"{w.get('partner_reminder', 0)} relances partenaires, "
        f"{w.get('expired', 0)} orientations expirées, {w.get('proposals_expired', 0)} "
        "propositions expirées, "
        f"{w.get('daily_digest', 0)} récapitulatifs quotidiens."
    )
    typer.echo(
        f"Envoi : {r['sent']} envoyés, {r['retried']} à réessayer, {r['parked']} mis de "
        "côté (erreur définitive)."
    )


def _register_optional_commands() -> None:
    """Commands owned by other modules (web server, accounts) register themselves here."""
    try:
        from workflows import cli_web
    except ImportError:  # pragma: no cover - during early development only
        return
    cli_web.register(app, users_app)


_register_optional_commands()


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()

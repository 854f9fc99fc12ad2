"""``aiguillage flows …``: serve, register and follow the scheduled flows (in French).

Why three commands: ``serve`` is the single-machine setup (one long-running process runs
every deployment on its schedule against ``PREFECT_API_URL``); ``deploy`` registers the same
deployments on a process work pool so ``prefect worker start --pool NAME`` can run them on
any number of machines; ``status`` tells what ran last, when, and with which counts.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import typer

flows_app = typer.Typer(help="Flux planifiés (serveur Prefect).", no_args_is_help=True)

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINTS = {
    "intake": "workflows/flows.py:intake_flow",
    "notifications": "workflows/flows.py:notifications_flow",
    "allocation": "workflows/flows.py:allocation_flow",
    "reporting": "workflows/flows.py:reporting_flow",
    "retention": "workflows/flows.py:retention_flow",
}
STATE_FR = {
    "COMPLETED": "terminé",
    "FAILED": "en échec",
    "CRASHED": "interrompu",
    "RUNNING": "en cours",
    "SCHEDULED": "planifié",
    "PENDING": "en attente",
    "CANCELLED": "annulé",
    "CANCELLING": "annulation en cours",
    "PAUSED": "en pause",
}


def _fail(message: str, code: int) -> None:
    typer.echo(f"Erreur : {message}", err=True)
    raise typer.Exit(code)


def _require_server() -> str:
    url = os.environ.get("PREFECT_API_URL", "")
    if not url:
        _fail(
            "PREFECT_API_URL n'est pas défini : les planifications ne tournent qu'avec un "
            "serveur Prefect (« prefect server start », puis "
            "PREFECT_API_URL=http://127.0.0.1:4200/api).",
            1,
        )
    return url


def _specs_or_fail() -> list[Any]:
    from engine.store.settings import load_settings
    from workflows.deployments import ScheduleError, build_deployments

    try:
        return build_deployments(load_settings())
    except ScheduleError as exc:
        _fail(str(exc), 2)
        raise  # unreachable


@flows_app.command("serve")
def serve_cmd() -> None:
    """Sert tous les déploiements sur ce serveur, jusqu'à l'arrêt (Ctrl+C)."""
    url = _require_server()
    deployments = _specs_or_fail()
    from prefect import serve

    typer.echo(f"Flux planifiés servis contre {url} : " + ", ".join(d.name for d in deployments))
    serve(*deployments, pause_on_shutdown=False, print_starting_message=False)


@flows_app.command("deploy")
def deploy_cmd(
    pool: str = typer.Option(..., "--pool", help="Nom de la file de travail (type process)."),
) -> None:
    """Enregistre les déploiements sur une file de travail, pour « prefect worker start »."""
    _require_server()
    from prefect import deploy, flow

    from engine.store.settings import load_settings
    from workflows.deployments import ScheduleError, flow_specs, parse_schedule

    settings = load_settings()
    deployments = []
    for spec in flow_specs(settings):
        try:
            schedule = parse_schedule(spec.setting, spec.schedule)
        except ScheduleError as exc:
            _fail(str(exc), 2)
        remote = flow.from_source(source=str(ROOT), entrypoint=ENTRYPOINTS[spec.name])
        deployments.append(
            remote.to_deployment(  # type: ignore[union-attr]  # sync from_source: a Flow
                name=spec.name,
                schedules=[schedule] if schedule is not None else [],
                description=spec.description,
                tags=["aiguillage"],
            )
        )
    _ensure_process_pool(pool)
    deploy(
        *deployments,  # type: ignore[arg-type]
        work_pool_name=pool,
        build=False,
        push=False,
        print_next_steps_message=False,
    )
    typer.echo(
        f"{len(deployments)} déploiements enregistrés sur la file « {pool} ». "
        f"Lancez « prefect worker start --pool {pool} » sur chaque machine."
    )


def _ensure_process_pool(pool: str) -> None:
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    async def create() -> None:
        async with get_client() as client:
            with contextlib.suppress(ObjectAlreadyExists):
                await client.create_work_pool(WorkPoolCreate(name=pool, type="process"))

    asyncio.run(create())


@flows_app.command("status")
def status_cmd() -> None:
    """Le dernier passage de chaque flux : état, date et comptes."""
    _require_server()
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    async def runs_of(client: Any, name: str, types: list[Any], sort: Any) -> Any:
        found = await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[name])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=types))
            ),
            sort=sort,
            limit=1,
        )
        return found[0] if found else None

    async def overview() -> list[tuple[str, Any, Any]]:
        done = [
            StateType.COMPLETED,
            StateType.FAILED,
            StateType.CRASHED,
            StateType.RUNNING,
            StateType.CANCELLED,
        ]
        async with get_client() as client:
            return [
                (
                    name,
                    await runs_of(client, name, done, FlowRunSort.START_TIME_DESC),
                    await runs_of(
                        client, name, [StateType.SCHEDULED], FlowRunSort.EXPECTED_START_TIME_ASC
                    ),
                )
                for name in ENTRYPOINTS
            ]

    for name, last, upcoming in asyncio.run(overview()):
        nxt = (
            f" ; prochain passage {upcoming.expected_start_time:%d/%m/%Y %H:%M} UTC"
            if upcoming is not None and upcoming.expected_start_time
            else " ; aucun passage planifié"
        )
        if last is None:
            typer.echo(f"{name} : jamais exécuté{nxt}")
            continue
        state = STATE_FR.get(last.state_type.value if last.state_type else "", "inconnu")
        when = f"{last.start_time:%d/%m/%Y %H:%M}" if last.start_time else "—"
        took = f"{last.total_run_time.total_seconds():.1f}".replace(".", ",")
        typer.echo(f"{name} : {state} (début {when} UTC, durée {took} s){nxt}")

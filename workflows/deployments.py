"""The flows as Prefect deployments with their schedules, so Aiguillage runs by itself.

Why deployments: the embedded (ephemeral) API never fires a schedule; a Prefect server does,
and a process that serves the deployments (``aiguillage flows serve``) or workers of a work
pool (``aiguillage flows deploy``, then ``prefect worker start``) run what falls due. Each
schedule is a setting — a cron expression read in Europe/Paris, an interval such as ``30s``,
``15m`` or ``2h``, or ``off`` — so a network changes its rhythm without code. Parameters stay
IDs, dates and counts: the flows read everything else from the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

from engine.store.settings import Settings

TIMEZONE = "Europe/Paris"
_INTERVAL = re.compile(r"^(\d{1,6})\s*(s|m|h)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours"}


class ScheduleError(ValueError):
    """A schedule setting that is neither a cron expression, an interval nor ``off``."""


@dataclass(frozen=True)
class FlowSpec:
    """One deployment: the flow, its schedule setting and how many runs may overlap."""

    name: str
    setting: str  # the environment variable of its schedule
    schedule: str
    description: str
    limit: int | None = None  # concurrent runs of the deployment (None: no limit)


def parse_schedule(setting: str, text: str) -> CronSchedule | IntervalSchedule | None:
    """The schedule a setting describes, or None for ``off``; a French ScheduleError else."""
    value = text.strip().lower()
    if value in ("off", "non", "0"):
        return None
    found = _INTERVAL.match(value)
    if found:
        amount = int(found[1])
        if amount <= 0:
            raise ScheduleError(f"{setting} : un intervalle doit être positif (« {text} »)")
        delta = timedelta(**{_UNITS[found[2]]: amount})
        return IntervalSchedule(interval=delta, timezone=TIMEZONE)
    try:
        return CronSchedule(cron=text.strip(), timezone=TIMEZONE)
    except ValueError:
        raise ScheduleError(
            f"{setting} : « {text[:60]} » n'est ni une expression cron (par exemple "
            "« 0 6 * * 1 »), ni un intervalle (« 30s », « 15m », « 2h »), ni « off »"
        ) from None


def flow_specs(settings: Settings) -> list[FlowSpec]:
    """The deployments of this installation, with their schedules from the settings."""
    return [
        FlowSpec(
            "intake",
            "AIGUILLAGE_SCHEDULE_INTAKE",
            settings.schedule_intake,
            "Oriente les nouveaux freins (file des chargé·es, partenaires directs).",
        ),
        FlowSpec(
            "notifications",
            "AIGUILLAGE_SCHEDULE_NOTIFICATIONS",
            settings.schedule_notifications,
            "Écrit les relances et récapitulatifs dus, puis envoie les courriels en attente.",
        ),
        FlowSpec(
            "allocation",
            "AIGUILLAGE_SCHEDULE_ALLOCATION",
            settings.schedule_allocation,
            "Répartit les places comptées entre les personnes en attente (à valider).",
            limit=1,
        ),
        FlowSpec(
            "reporting",
            "AIGUILLAGE_SCHEDULE_REPORTING",
            settings.schedule_reporting,
            "Calcule les indicateurs d'impact et de pilotage (instantanés par mois et territoire).",
            limit=1,
        ),
        FlowSpec(
            "retention",
            "AIGUILLAGE_SCHEDULE_RETENTION",
            settings.schedule_retention,
            "Avise les CIP/ESP, anonymise les dossiers arrivés à échéance, purge les journaux.",
            limit=1,
        ),
    ]


def _flow_of(name: str) -> Any:
    from workflows.flows import (
        allocation_flow,
        intake_flow,
        notifications_flow,
        reporting_flow,
        retention_flow,
    )

    return {
        "intake": intake_flow,
        "notifications": notifications_flow,
        "allocation": allocation_flow,
        "reporting": reporting_flow,
        "retention": retention_flow,
    }[name]


def build_deployments(settings: Settings, **kwargs: Any) -> list[Any]:
    """``RunnerDeployment`` objects for ``prefect.serve`` (or ``deploy`` with a pool).

    The allocation never runs twice at once: concurrency 1 with CANCEL_NEW on top of the
    database's one-running-run rule. The relay's leases make notifications safe to overlap.
    """
    out = []
    for spec in flow_specs(settings):
        schedule = parse_schedule(spec.setting, spec.schedule)
        limit = (
            ConcurrencyLimitConfig(
                limit=spec.limit, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
            )
            if spec.limit
            else None
        )
        out.append(
            _flow_of(spec.name).to_deployment(
                name=spec.name,
                schedules=[schedule] if schedule is not None else [],
                concurrency_limit=limit,
                description=spec.description,
                tags=["aiguillage"],
                **kwargs,
            )
        )
    return out

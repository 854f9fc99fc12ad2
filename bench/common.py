"""Shared helpers for the benches: run a step in a fresh process, measure wall time and peak RSS."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PY = sys.executable


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        # The processor: CP-SAT's speed per deterministic unit differs by 2 × between the
        # VMs this project has run on (AMD EPYC, Intel Xeon at 2.1 GHz).
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg": os.getloadavg(),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_measured(
    code: str, env: dict[str, str] | None = None, timeout: float = 1800
) -> dict[str, Any]:
    """Run python code in a fresh process; return wall time, peak RSS (MB) and its JSON output.

    The code prints one JSON object on its last line of stdout.
    """
    wrapper = (
        "import json, resource, time\n"
        "_t0 = time.perf_counter()\n"
        f"{code}\n"
        "_out = dict(result) if 'result' in dir() else {}\n"
        "_out['wall_s'] = round(time.perf_counter() - _t0, 3)\n"
        "_out['peak_rss_mb'] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)\n"
        "print(json.dumps(_out))\n"
    )
    full_env = {**os.environ, **(env or {})}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [PY, "-c", wrapper], env=full_env, capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench step failed:\n{proc.stderr[-4000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_wall_s"] = round(time.perf_counter() - t0, 3)
    return out


PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


def create_pg_database(name: str) -> str:
    """A fresh PostgreSQL database on the local server (dropped first if it exists)."""
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def write(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"machine": machine(), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **data}
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


# Code run in a fresh process by run_measured (URL and SCALE are set before it).
SEED_STEP = """
from engine.store.db import Database
from engine.store.migrate import upgrade
from engine.domain.clock import Clock
from engine.network.seed import seed_network
upgrade(URL)
db = Database(URL)
s = seed_network(db, scale=SCALE, seed=42, clock=Clock.system())
result = {"people": sum(s.people.values()), "freins": sum(s.freins_by_domain.values())}
"""

ROUTE_STEP = """
from engine.store.db import Database
from engine.domain.clock import Clock
from engine.intake.run import run_intake
from engine.store.settings import Settings
db = Database(URL)
r = run_intake(db, Settings(database_url=URL), clock=Clock.system())
result = {"routed": r.routed, "by_owner_kind": dict(r.by_owner_kind)}
"""


def serve_counting_smtp(
    port: int, received: Any, ready: Any, stop: Any, host: str = "127.0.0.1"
) -> None:
    """Child process: an aiosmtpd server that counts and discards messages."""
    from aiosmtpd.controller import Controller

    class Count:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with received.get_lock():
                received.value += 1
            return "250 OK"

    controller = Controller(Count(), hostname=host, port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()

"""Flows against a running Prefect server: `aiguillage route` end to end, and the time from a
frein's import to its referral being in a queue when only the schedule runs the intake.

Usage: python bench/bench_server.py [--quick]
Writes bench/results/server.json. In the same run: `route` at scale 1 through a running
`prefect server start` (PREFECT_API_URL set) and through the ephemeral API (the baseline:
a temporary server started by the command itself), each on its own copy of one seeded
database. Then `aiguillage flows serve` with a short intake interval; the example CSV is
imported at a random moment and the bench polls until its people's freins are referrals.
The measured lag after the scheduled start (runner poll + flow start + routing) is added to
the default 15-minute interval to give the default latency (mean: half the interval).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from common import ROOT, SEED_STEP, run_measured, write

BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
EXAMPLE = ROOT / "examples" / "salaries-exemple.csv"
DEFAULT_INTAKE_INTERVAL_S = 15 * 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate, timeout_s: float, what: str, step: float = 0.2) -> float:  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if predicate():
            return time.monotonic() - t0
        time.sleep(step)
    raise RuntimeError(f"timed out waiting for {what}")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _api(url: str, path: str, body: dict) -> list:  # type: ignore[type-arg]
    request = urllib.request.Request(
        f"{url}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
    return round(time.perf_counter() - t0, 3)


def _referrals(db_file: Path) -> int:
    with sqlite3.connect(db_file, timeout=30) as conn:
        return int(conn.execute("SELECT count(*) FROM referral").fetchone()[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aiguillage-bench-server-"))
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    base_env = {
        **os.environ,
        "PREFECT_HOME": str(tmp / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    }
    base_env.pop("PREFECT_API_URL", None)
    server_env = {
        **base_env,
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp / 'prefect.db'}",
        "PREFECT_UI_ENABLED": "false",
    }
    server_log = (tmp / "server.log").open("w")
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=server_env,
        stdout=server_log,
        stderr=subprocess.STDOUT,
    )
    serve = None
    try:
        out: dict = {}  # type: ignore[type-arg]
        seeded = tmp / "seeded.db"
        scale = 0.2 if args.quick else 1.0
        out["seed"] = run_measured(
            f"URL={'sqlite:///' + str(seeded)!r}; SCALE={scale}\n" + SEED_STEP
        )
        out["server_start_s"] = round(_wait(lambda: _healthy(url), 180, "the Prefect server"), 1)
        runs = 1 if args.quick else 3
        for mode in ("running_server", "ephemeral"):
            times = []
            for i in range(runs):
                copy = tmp / f"{mode}-{i}.db"
                shutil.copy(seeded, copy)
                env = {**base_env, "AIGUILLAGE_DATABASE_URL": f"sqlite:///{copy}"}
                if mode == "running_server":
                    env["PREFECT_API_URL"] = url
                times.append(_timed([str(BIN / "aiguillage"), "route"], env))
            out[f"route_scale_{scale:g}_{mode}_s"] = {
                "runs": times,
                "median": statistics.median(times),
            }
        ratio = (
            out[f"route_scale_{scale:g}_running_server_s"]["median"]
            / out[f"route_scale_{scale:g}_ephemeral_s"]["median"]
        )
        out["ratio_running_server_to_ephemeral"] = round(ratio, 2)

        # Import → queue with only the schedule running the intake.
        live = tmp / "live.db"
        shutil.copy(tmp / "running_server-0.db", live)  # already routed: only new freins remain
        interval = 20 if args.quick else 60
        env = {
            **base_env,
            "PREFECT_API_URL": url,
            "AIGUILLAGE_DATABASE_URL": f"sqlite:///{live}",
            "AIGUILLAGE_SCHEDULE_INTAKE": f"{interval}s",
            "AIGUILLAGE_SCHEDULE_NOTIFICATIONS": "off",
            "AIGUILLAGE_SCHEDULE_ALLOCATION": "off",
        }
        serve_log = (tmp / "serve.log").open("w")
        serve = subprocess.Popen([str(BIN / "aiguillage"), "flows", "serve"], env=env,
                                 stdout=serve_log, stderr=subprocess.STDOUT)  # fmt: skip
        time.sleep(random.uniform(5, interval))
        before = _referrals(live)
        imported_at = datetime.now(UTC)  # a benchmark: the wall clock is what is measured
        _timed([str(BIN / "aiguillage"), "import", "salaries", str(EXAMPLE)], env)
        latency = _wait(
            lambda: _referrals(live) > before, 4 * interval + 120, "the scheduled intake", 0.1
        )
        routed_at = imported_at.timestamp() + latency
        flow_runs = _api(
            url, "/flow_runs/filter", {"sort": "EXPECTED_START_TIME_ASC", "limit": 200}
        )
        starts = [datetime.fromisoformat(r["expected_start_time"]).timestamp() for r in flow_runs]
        slot = min(s for s in starts if s >= imported_at.timestamp())
        lag = routed_at - slot
        out["import_to_queue"] = {
            "intake_interval_s": interval,
            "measured_latency_s": round(latency, 1),
            "wait_for_scheduled_start_s": round(slot - imported_at.timestamp(), 1),
            "lag_after_scheduled_start_s": round(lag, 1),
            "default_interval_s": DEFAULT_INTAKE_INTERVAL_S,
            "default_mean_s": round(DEFAULT_INTAKE_INTERVAL_S / 2 + lag, 1),
            "default_max_s": round(DEFAULT_INTAKE_INTERVAL_S + lag, 1),
        }
        out["targets"] = {"route_scale_1_running_server_s_max": 5}
        path = write("server", {"scale": scale, **out})
        print(path.read_text())
    finally:
        if serve is not None:
            serve.terminate()
            serve.wait(timeout=60)
        server.terminate()
        server.wait(timeout=60)
        server_log.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

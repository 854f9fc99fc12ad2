"""Import of data·inclusion services at scale, and routing with them loaded.

Usage: python bench/bench_services.py [--services 50000] [--scale 50] [--quick] [--no-postgres]
Writes bench/results/services.json.

- The export is generated from the schema package's models (``aiguillage services generate``'s
  code, seed 42), so every service is valid; 95 % of them reach a territory.
- ``import``: ``engine.directory.services_import.import_services`` of the whole file into a
  seeded network, in a fresh process (wall time, peak RSS); then the same file again
  (``reimport``: nothing changes, every digest is compared).
- ``route_without`` / ``route_with``: the intake (``run_intake``) on copies of the same
  seeded network at ``--scale``, without and with the services, alternated ``--repeat`` times
  (the fastest of each side kept): the ratio is the cost of tens of thousands of extra offers
  for routing, measured in the same run.
- On PostgreSQL (127.0.0.1:5432), the import again (RETURNING in batches, another path).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from common import ROUTE_STEP, SEED_STEP, create_pg_database, drop_pg_database, run_measured, write

GENERATE = """
from datetime import date
from engine.store.db import Database, unit_of_work
from engine.directory.services_import import territory_departments
from partners.data_inclusion_fixtures import generate_services, services_json
db = Database(URL)
with unit_of_work(db) as s:
    territories = territory_departments(s)
services = generate_services(N, seed=42, today=date.today(), territories=territories)
body = services_json(services)
open(OUT, "wb").write(body)
result = {"services": N, "file_mb": round(len(body) / 1e6, 1)}
"""

IMPORT = """
from engine.store.db import Database
from engine.store.migrate import upgrade
from engine.domain.clock import Clock
from engine.directory.services_import import import_services
upgrade(URL)
db = Database(URL)
data = open(FILE, "rb").read()
o = import_services(db, data, filename="services.json", clock=Clock.system())
assert o.ok, o.report[:2000]
result = {k: v for k, v in o.as_dict().items()}
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=50_000)
    ap.add_argument("--scale", type=float, default=50)
    ap.add_argument("--quick", action="store_true", help="2,000 services, scale 0.5")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--repeat", type=int, default=2, help="routing runs per side (min kept)")
    args = ap.parse_args()
    n, scale = (2_000, 0.5) if args.quick else (args.services, args.scale)
    tmp = Path(tempfile.mkdtemp(prefix="bench-services-"))
    out: dict = {"services": n, "scale": scale}  # type: ignore[type-arg]
    try:
        without, with_ = tmp / "without.db", tmp / "with.db"
        url_without, url_with = f"sqlite:///{without}", f"sqlite:///{with_}"
        out["seed"] = run_measured(f"URL={url_without!r}; SCALE={scale}\n" + SEED_STEP)
        shutil.copy(without, with_)
        # Routing writes the referrals: each repetition routes its own copy of the seed.
        for k in range(1, args.repeat):
            shutil.copy(without, tmp / f"without-{k}.db")
        export = tmp / "services.json"
        out["generate"] = run_measured(
            f"URL={url_without!r}; N={n}; OUT={str(export)!r}\n" + GENERATE
        )
        out["import"] = run_measured(f"URL={url_with!r}; FILE={str(export)!r}\n" + IMPORT)
        out["reimport"] = run_measured(f"URL={url_with!r}; FILE={str(export)!r}\n" + IMPORT)
        for k in range(1, args.repeat):
            shutil.copy(with_, tmp / f"with-{k}.db")
        # Alternated (without, with, with, without, ...) so that a busy moment of the shared
        # machine weighs on both sides; the fastest of each side is kept.
        runs: dict[str, list[dict]] = {"without": [], "with": []}  # type: ignore[type-arg]
        for k in range(args.repeat):
            suffix = "" if k == 0 else f"-{k}"
            order = ("without", "with") if k % 2 == 0 else ("with", "without")
            for side in order:
                db_url = f"sqlite:///{tmp / f'{side}{suffix}.db'}"
                runs[side].append(run_measured(f"URL={db_url!r}\n" + ROUTE_STEP))
        out["route_without"] = min(runs["without"], key=lambda r: r["wall_s"])
        out["route_with"] = min(runs["with"], key=lambda r: r["wall_s"])
        out["route_runs_s"] = {side: [r["wall_s"] for r in rs] for side, rs in runs.items()}
        out["route_ratio_with_to_without"] = round(
            out["route_with"]["wall_s"] / max(out["route_without"]["wall_s"], 1e-9), 2
        )
        out["import_services_per_s"] = round(n / max(out["import"]["wall_s"], 1e-9))
        if not args.no_postgres:
            try:
                url = create_pg_database("bench_services")
            except Exception as exc:  # noqa: BLE001 - the server may be absent on a laptop
                out["postgres"] = {"skipped": str(exc)[:200]}
            else:
                try:
                    pg = url.replace("postgresql://", "postgresql+psycopg://")
                    out["postgres"] = {
                        "seed": run_measured(f"URL={pg!r}; SCALE={min(scale, 1)}\n" + SEED_STEP),
                        "import": run_measured(f"URL={pg!r}; FILE={str(export)!r}\n" + IMPORT),
                    }
                finally:
                    drop_pg_database("bench_services")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    path = write("services", out)
    print(f"[services] import of {n} services: {out['import']['wall_s']} s, "
          f"{out['import']['peak_rss_mb']} MB; re-import {out['reimport']['wall_s']} s; "
          f"routing at scale {scale:g} with them / without: {out['route_ratio_with_to_without']} "
          f"({out['route_with']['wall_s']} s / {out['route_without']['wall_s']} s) -> {path}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

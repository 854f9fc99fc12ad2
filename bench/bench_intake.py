"""Seeding and intake at scale: time, peak RSS, and the ratio to a bare Core bulk insert.

Usage: python bench/bench_intake.py [--scale 50] [--quick] [--no-postgres]
Writes bench/results/intake.json. Each step runs in a fresh process so that peak RSS is the
step's own. The bare insert writes the same number of minimal referral rows with SQLAlchemy
Core executemany into a copy of the same seeded database, in the same run. The same steps
then run on PostgreSQL (127.0.0.1:5432), where the bare baseline is a ``COPY`` of those rows
into a copy of the seeded database (``CREATE DATABASE … TEMPLATE``).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from common import ROUTE_STEP, SEED_STEP, run_measured, write

SEED = SEED_STEP

ROUTE = ROUTE_STEP

BARE = """
from sqlalchemy import insert, select
from engine.store import models as m
from engine.store.db import Database
db = Database(URL)
with db.engine.connect() as conn:
    rows = conn.execute(select(m.Frein.id, m.Frein.salarie_id, m.Frein.domain, m.Frein.thematique)).all()
    sal = dict(conn.execute(select(m.Salarie.id, m.Salarie.chantier_id)).all())
import time
from datetime import UTC, datetime
now = datetime.now(UTC)  # a benchmark baseline: the wall clock is fine here
t0 = time.perf_counter()
values = [{"frein_id": f, "salarie_id": s, "chantier_id": sal[s], "territory_id": None, "programme": "cvg",
           "domain": d, "thematique": t, "state": "new", "owner_kind": "officer", "owner_user_id": None,
           "units_needed": 1, "priority": 0, "priority_breakdown": [], "reasons": [], "explanation": "",
           "suggestions": [], "reminders_sent": 0, "version": 1, "created_at": now,
           "state_changed_at": now} for f, s, d, t in rows]
with db.engine.begin() as conn:
    for i in range(0, len(values), 100_000):
        conn.execute(insert(m.Referral.__table__), values[i:i + 100_000])
result = {"rows": len(values), "insert_s": round(time.perf_counter() - t0, 3)}
"""

BARE_COPY = BARE.replace(
    """with db.engine.begin() as conn:
    for i in range(0, len(values), 100_000):
        conn.execute(insert(m.Referral.__table__), values[i:i + 100_000])""",
    """from engine.store import dialect
with db.engine.begin() as conn:
    dialect.copy_rows(conn, m.Referral.__table__, values)""",
)
assert BARE_COPY != BARE

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _pg(sql: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(sql))
    admin.dispose()


def _postgres(scale: float, sqlite_route_s: float) -> dict:  # type: ignore[type-arg]
    """Seed, bare COPY and route on PostgreSQL; ratios to SQLite's route and to the COPY."""
    base = PG_ADMIN.rsplit("/", 1)[0]
    names = ("bench_intake_seeded", "bench_intake_bare")
    for name in names:
        _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _pg(f'CREATE DATABASE "{names[0]}"')
    url = f"{base}/{names[0]}"
    try:
        out = {f"seed_scale_{scale:g}": run_measured(f"URL={url!r}; SCALE={scale}\n" + SEED)}
        _pg(f'CREATE DATABASE "{names[1]}" TEMPLATE "{names[0]}"')
        out["bare_copy"] = run_measured(f"URL={base + '/' + names[1]!r}\n" + BARE_COPY)
        out["route"] = run_measured(f"URL={url!r}\n" + ROUTE)
        out["ratio_route_to_sqlite_route"] = round(out["route"]["wall_s"] / sqlite_route_s, 2)
        out["ratio_route_to_bare_copy"] = round(
            out["route"]["wall_s"] / out["bare_copy"]["insert_s"], 2
        )
        return out
    finally:
        for name in names:
            _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=50)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-postgres", action="store_true")
    args = ap.parse_args()
    scale = 2.0 if args.quick else args.scale
    tmp = Path(tempfile.mkdtemp(prefix="aiguillage-bench-"))
    try:
        out = {}
        small = f"sqlite:///{tmp / 's1.db'}"
        out["seed_scale_1"] = run_measured(f"URL={small!r}; SCALE=1.0\n" + SEED)
        big = tmp / "big.db"
        url = f"sqlite:///{big}"
        out[f"seed_scale_{scale:g}"] = run_measured(f"URL={url!r}; SCALE={scale}\n" + SEED)
        copy = tmp / "bare.db"
        shutil.copy(big, copy)
        for suffix in ("-wal", "-shm"):
            if Path(str(big) + suffix).exists():
                shutil.copy(str(big) + suffix, str(copy) + suffix)
        out["bare_insert"] = run_measured(f"URL={'sqlite:///' + str(copy)!r}\n" + BARE)
        out["route"] = run_measured(f"URL={url!r}\n" + ROUTE)
        ratio = out["route"]["wall_s"] / out["bare_insert"]["insert_s"]
        out["ratio_route_to_bare_insert"] = round(ratio, 2)
        if not args.no_postgres:
            out["postgresql"] = _postgres(scale, out["route"]["wall_s"])
        out["targets"] = {
            "ratio_max": 4,
            "route_peak_rss_mb_max": 2048,
            "seed_scale_50_s_max": 120,
            "postgresql_ratio_route_to_sqlite_route_max": 1.5,
        }
        path = write("intake", {"scale": scale, **out})
        print(path.read_text())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

"""The queue page and the API list under load: 50 logged-in sessions on a million referrals.

Usage: python bench/bench_web.py [--scale 50] [--quick] [--db sqlite|postgres|both]
                                 [--workers 2] [--duration 15] [--no-analyze] [--proposed-index]
Writes bench/results/web.json (a run of one database keeps the other's entry).

Why this shape: the issue's target is p95 < 100 ms with 0 errors for /file and
/api/v1/referrals under 50 concurrent sessions, on SQLite and PostgreSQL, on this 2-core
machine. For each database the bench builds a fresh network (migrate, seed at scale S, the
intake), starts the real app with uvicorn in its own process on a free loopback port, logs in
50 distinct sessions of every role (officers of each territory and domain, coordinators, the
PHC national queue, the national admin, CIPs), then drives four endpoints (the queue by
priority, the queue by deadline, the API list, the API's second page through its keyset
cursor) with the bounded loader of ``web_load``, in two profiles:

- ``paced``: each session waits an exponential think time (mean 1 s) between requests —
  50 very busy people, about 50 requests per second in all;
- ``saturation``: no think time — the server's capacity; latency there is mostly queueing
  (Little's law: mean latency ≈ 50 / throughput).

After the intake the bench runs ANALYZE (``--no-analyze`` to skip): SQLite has no statistics
until someone does, and without them it sorts every open referral for the national queue.
Each database is measured as the migrations leave it (``as_is``); the deadline index this
bench once proposed is now part of the schema (migration 0003), so the second pass is off
unless ``--proposed-index`` asks for it on an older schema. Traffic goes only to 127.0.0.1; each phase is bounded in time and in request count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from common import (
    PY,
    RESULTS,
    ROOT,
    ROUTE_STEP,
    SEED_STEP,
    create_pg_database,
    drop_pg_database,
    machine,
    run_measured,
)
from web_load import Phase, make_clients, run_phase

TARGET_P95_MS = 100.0
# The code before the queue's speed work (issue #13 item 7): the "before" of every ratio.
BASELINE = "3b9f951"
SESSIONS = 50
SECRET = "bench-web-secret-key-not-for-production-0123456789"

SEED = SEED_STEP

ROUTE = ROUTE_STEP


# --- database ----------------------------------------------------------------------------


def build(url: str, scale: float) -> dict[str, Any]:
    """Migrate, seed and route in fresh processes; return each step's time and peak RSS."""
    out = {"seed": run_measured(f"URL={url!r}; SCALE={scale}\n" + SEED, timeout=3600)}
    out["intake"] = run_measured(f"URL={url!r}\n" + ROUTE, timeout=3600)
    return out


# Proposed (not in the migrations yet): the deadline order of open referrals, walked by
# /file?tri=due. Measured in a second pass, after the as-is pass.
PROPOSED_INDEX = (
    "CREATE INDEX ix_referral_open_due ON referral (due_at, id) WHERE state IN "
    "('new', 'triaging', 'referred', 'waitlisted', 'proposed', 'accepted', 'in_progress')"
)


def sql_step(url: str, statements: list[str]) -> float:
    """Run DDL / maintenance statements in one committed transaction; return the wall time.

    (Not AUTOCOMMIT: the engine's SQLite ``begin`` hook opens a transaction anyway, and it
    would be rolled back on close — ANALYZE and CREATE INDEX are transactional on both.)
    """
    from engine.store.db import Database

    db = Database(url)
    t0 = time.perf_counter()
    with db.engine.begin() as conn:
        for sql in statements:
            conn.exec_driver_sql(sql)
    db.dispose()
    return round(time.perf_counter() - t0, 3)


def pick_accounts(url: str, n: int) -> list[dict[str, Any]]:
    """n staff accounts of every role, spread over territories and domains (reused if short)."""
    from sqlalchemy import select

    from engine.store import models as m
    from engine.store.db import Database

    db = Database(url)
    with db.engine.connect() as conn:
        staff = conn.execute(
            select(m.StaffUser.email, m.StaffUser.role, m.StaffUser.territory_id,
                   m.StaffUser.domain, m.StaffUser.national_queue)
            .where(m.StaffUser.active, m.StaffUser.password_hash.is_not(None))
            .order_by(m.StaffUser.id)
        ).all()  # fmt: skip
    db.dispose()
    admin = [s for s in staff if s.role == "national_admin"][:1]
    phc = [s for s in staff if s.role == "coordinator" and s.national_queue][:1]
    coords, seen = [], set()
    for s in staff:
        if s.role == "coordinator" and not s.national_queue and s.territory_id not in seen:
            seen.add(s.territory_id)
            coords.append(s)
    officers, seen2 = [], set()
    for s in staff:
        if s.role == "officer" and (s.territory_id, s.domain) not in seen2:
            seen2.add((s.territory_id, s.domain))
            officers.append(s)
    cips = [s for s in staff if s.role == "cip"]
    cips = cips[:: max(1, len(cips) // 12)][:12]
    chosen = admin + phc + coords[:8] + officers[: n - len(admin + phc + coords[:8] + cips)] + cips
    pool = chosen or list(staff)
    out = [pool[i % len(pool)] for i in range(n)]
    return [{"email": s.email, "role": s.role} for s in out]


# --- server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, port: int, workers: int, log: Path, *, code: Path = ROOT,
                 extra: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:  # fmt: skip
    """uvicorn in its own process; keep-alive 75 s (as behind a proxy), so that a session that
    thinks for a few seconds does not race the server closing its idle socket.

    ``code``: the checkout whose packages the server imports (a baseline's worktree comes
    first on the path, before the editable install of this one)."""
    env = {
        **os.environ,
        "AIGUILLAGE_DATABASE_URL": url,
        "AIGUILLAGE_SECRET_KEY": SECRET,
        "AIGUILLAGE_BASE_URL": f"http://127.0.0.1:{port}",
        "PYTHONPATH": str(code),
    }
    cmd = [PY, "-m", "uvicorn", "web.app:create_app", "--factory", "--host", "127.0.0.1",
           "--port", str(port), "--workers", str(workers), "--log-level", "warning",
           "--timeout-keep-alive", "75",
           "--no-access-log", *extra]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=code, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/connexion", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.terminate()
    raise RuntimeError("uvicorn did not answer within 90 s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def server_cpu_s(proc: subprocess.Popen[bytes]) -> float:
    """CPU seconds used so far by uvicorn's workers (the parent only supervises)."""
    total = 0.0
    for p in psutil.Process(proc.pid).children(recursive=True):
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


# --- sessions ----------------------------------------------------------------------------

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def login_all(base: str, accounts: list[dict[str, Any]]) -> tuple[list[dict[str, str]], float]:
    """Log every account in through the real login form; return their cookie jars."""
    jars = []
    t0 = time.perf_counter()
    for acc in accounts:
        with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as c:
            page = c.get("/connexion")
            token = _CSRF.search(page.text)
            assert token, "jeton CSRF absent de la page de connexion"
            r = c.post("/connexion", data={"email": acc["email"], "password": "demo-aiguillage",
                                           "csrf_token": token.group(1), "suivant": "/file"})  # fmt: skip
            if r.status_code != 303 or "aiguillage_session" not in c.cookies:
                raise RuntimeError(f"login failed for {acc['email']}: {r.status_code}")
            jars.append({"aiguillage_session": c.cookies["aiguillage_session"]})
    return jars, time.perf_counter() - t0


def second_page_cursors(base: str, jars: list[dict[str, str]]) -> list[str | None]:
    out = []
    for jar in jars:
        with httpx.Client(base_url=base, cookies=jar, timeout=30) as c:
            r = c.get("/api/v1/referrals")
            r.raise_for_status()
            out.append(r.json()["next"])
    return out


# --- phases ------------------------------------------------------------------------------


def endpoints(cursors: list[str | None]) -> dict[str, tuple[Any, bytes]]:
    def page2(i: int) -> str:
        c = cursors[i]
        return f"/api/v1/referrals?after={c}" if c else "/api/v1/referrals"

    return {
        "file": (lambda i: "/file", b"</table>"),
        "file_due": (lambda i: "/file?tri=due", b"</table>"),
        "api": (lambda i: "/api/v1/referrals", b'"items"'),
        "api_page2": (page2, b'"items"'),
    }


async def measure(base: str, jars: list[dict[str, str]], cursors: list[str | None],
                  proc: subprocess.Popen[bytes], duration: float) -> dict[str, Any]:  # fmt: skip
    clients = make_clients(base, jars)
    eps = endpoints(cursors)
    out: dict[str, Any] = {"paced": {}, "saturation": {}}
    try:
        for name, (path_of, marker) in eps.items():  # warm-up: caches, pools, page cache
            await run_phase(clients, Phase(f"warmup-{name}", path_of, marker, 3.0, 2_000))
        for profile, think in (("paced", 1.0), ("saturation", 0.0)):
            for k, (name, (path_of, marker)) in enumerate(eps.items()):
                cpu0 = server_cpu_s(proc)
                res = await run_phase(
                    clients, Phase(name, path_of, marker, duration, 50_000, think), seed=k + 1
                )
                summary = res.summary()
                summary["server_cpu_s"] = round(server_cpu_s(proc) - cpu0, 2)
                summary["server_cpu_ms_per_request"] = (
                    round(1000 * summary["server_cpu_s"] / summary["count"], 2)
                    if summary["count"]
                    else None
                )
                summary["p95_pass"] = bool(
                    summary["p95_ms"] is not None
                    and summary["p95_ms"] < TARGET_P95_MS
                    and summary["errors"] == 0
                )
                out[profile][name] = summary
                print(f"  {profile:10s} {name:10s} n={summary['count']:6d} "
                      f"err={summary['errors']} p50={summary['p50_ms']} p95={summary['p95_ms']} "
                      f"p99={summary['p99_ms']} rps={summary['throughput_rps']}", flush=True)  # fmt: skip
    finally:
        for c in clients:
            await c.aclose()
    return out


def ratios(load: dict[str, Any]) -> dict[str, Any]:
    """Current over baseline, per profile and endpoint: CPU per request, p95, throughput."""
    out: dict[str, Any] = {}
    for profile, eps in load["as_is"].items():
        for name, cur in eps.items():
            old = load["baseline"][profile][name]
            row = {}
            for key in ("server_cpu_ms_per_request", "p95_ms", "throughput_rps"):
                if cur.get(key) and old.get(key):
                    row[key] = round(cur[key] / old[key], 3)
            out[f"{profile}.{name}"] = row
    return out


def run_database(kind: str, scale: float, workers: int, duration: float, tmp: Path, *,
                 analyze: bool = True, proposed_index: bool = True,
                 existing_url: str | None = None,
                 baseline: str | None = None) -> dict[str, Any]:  # fmt: skip
    pg_name = f"aiguillage_bench_web_{os.getpid()}"
    owned = existing_url is None
    if existing_url:
        url = existing_url
    else:
        url = f"sqlite:///{tmp / 'web.db'}" if kind == "sqlite" else create_pg_database(pg_name)
    result: dict[str, Any] = {"scale": scale, "workers": workers, "analyze": analyze}
    proc = None
    try:
        print(f"[{kind}] building the network at scale {scale:g}…", flush=True)
        result["build"] = build(url, scale) if owned else {"reused": True}
        if analyze:  # what the planner needs after a bulk load (SQLite never does it alone)
            result["build"]["analyze_s"] = sql_step(url, ["ANALYZE"])
        print(f"[{kind}] built: {json.dumps(result['build'])}", flush=True)
        accounts = pick_accounts(url, SESSIONS)
        port = free_port()
        proc = start_server(url, port, workers, tmp / f"uvicorn-{kind}.log")
        base = f"http://127.0.0.1:{port}"
        jars, login_s = login_all(base, accounts)
        cursors = second_page_cursors(base, jars)
        roles: dict[str, int] = {}
        for a in accounts:
            roles[a["role"]] = roles.get(a["role"], 0) + 1
        result["sessions"] = {"count": len(jars), "distinct_accounts": len({a["email"] for a in accounts}),
                              "by_role": roles, "login_total_s": round(login_s, 2),
                              "with_second_page": sum(c is not None for c in cursors)}  # fmt: skip
        print(f"[{kind}] sessions: {result['sessions']}", flush=True)
        result["load_avg_before"] = os.getloadavg()
        result["load"] = {"as_is": asyncio.run(measure(base, jars, cursors, proc, duration))}
        if baseline:
            # The same database, sessions and load, served by the code of ``baseline`` as it
            # was installed then (uvicorn's pure-Python h11 parser and asyncio loop).
            stop_server(proc)
            proc = None
            tree = tmp / "baseline"
            subprocess.run(["git", "worktree", "add", "--detach", "--force", str(tree), baseline],
                           cwd=ROOT, check=True, capture_output=True)  # fmt: skip
            try:
                proc = start_server(url, port, workers, tmp / f"uvicorn-{kind}-baseline.log",
                                    code=tree, extra=("--http", "h11", "--loop", "asyncio"))  # fmt: skip
                print(f"[{kind}] baseline {baseline}", flush=True)
                result["baseline"] = {"revision": baseline, "uvicorn": "--http h11 --loop asyncio"}
                result["load"]["baseline"] = asyncio.run(
                    measure(base, jars, cursors, proc, duration)
                )
                stop_server(proc)
                proc = None
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                               check=False, capture_output=True)  # fmt: skip
            result["ratios"] = ratios(result["load"])
            print(f"[{kind}] ratios current/baseline: {json.dumps(result['ratios'])}", flush=True)
        if proposed_index:
            # The app looks at the indexes once at start (as after a migration): restart it.
            # Sessions live in the database, so the cookies stay valid.
            stop_server(proc)
            proc = None
            result["build"]["proposed_index_s"] = sql_step(url, [PROPOSED_INDEX, "ANALYZE"])
            proc = start_server(url, port, workers, tmp / f"uvicorn-{kind}-2.log")
            print(f"[{kind}] with the proposed index ix_referral_open_due", flush=True)
            result["load"]["with_ix_referral_open_due"] = asyncio.run(
                measure(base, jars, cursors, proc, duration)
            )
        result["load_avg_after"] = os.getloadavg()
    finally:
        if proc is not None:
            stop_server(proc)
        if kind == "postgres" and owned:
            drop_pg_database(pg_name)
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=50)
    ap.add_argument("--quick", action="store_true", help="scale 2, 5 s per phase")
    ap.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    ap.add_argument("--workers", type=int, default=2, help="uvicorn workers (2 cores: 2)")
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per measured phase")
    ap.add_argument("--no-analyze", action="store_true", help="skip ANALYZE after the intake")
    ap.add_argument("--proposed-index", action="store_true",
                    help="second pass creating ix_referral_open_due (schemas before 0003)")  # fmt: skip
    ap.add_argument("--url", help="measure this already built database (not dropped; no JSON)")
    ap.add_argument("--baseline", default=BASELINE,
                    help="git revision measured after the current code on the same database "
                         "('none' to skip)")  # fmt: skip
    args = ap.parse_args()
    scale = 2.0 if args.quick else args.scale
    duration = 5.0 if args.quick else args.duration
    kinds = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    baseline = None if args.baseline == "none" else args.baseline
    if args.url:  # iteration on a kept database: print, do not write the results file
        kind = "sqlite" if args.url.startswith("sqlite") else "postgres"
        with tempfile.TemporaryDirectory(prefix="aiguillage-bench-web-") as tmp:
            out = run_database(kind, scale, args.workers, duration, Path(tmp), analyze=False,
                               proposed_index=False, existing_url=args.url,
                               baseline=baseline)  # fmt: skip
        print(json.dumps({"load": out["load"], "ratios": out.get("ratios")}, indent=1))
        return
    path = RESULTS / "web.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    databases = dict(previous.get("databases", {}))
    with tempfile.TemporaryDirectory(prefix="aiguillage-bench-web-") as tmp:
        for kind in kinds:
            databases[kind] = {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                               **run_database(kind, scale, args.workers, duration, Path(tmp),
                                            analyze=not args.no_analyze,
                                            proposed_index=args.proposed_index,
                                            baseline=baseline)}  # fmt: skip
    data = {
        "machine": machine(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "targets": {"p95_ms_max": TARGET_P95_MS, "errors_max": 0, "sessions": SESSIONS,
                    "endpoints": ["/file", "/file?tri=due", "/api/v1/referrals",
                                  "/api/v1/referrals?after=<curseur>"],
                    "profiles": {"paced": "think time exponential, mean 1 s per session",
                                 "saturation": "no think time (capacity; latency = queueing)"}},
        "loader": "bench/web_load.py: asyncio + httpx, one keep-alive socket per session, loopback",
        "databases": databases,
    }  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"written {path}")


if __name__ == "__main__":
    main()

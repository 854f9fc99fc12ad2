"""`make bench`: every benchmark in turn, each writing its JSON under bench/results/.

Why separate processes: each bench measures its own peak memory and must not inherit the
caches or the heap of the previous one. ``--quick`` runs the small sizes only (a smoke test
of the benches themselves). A summary of the headline figures goes to summary.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

BENCHES = [
    ("intake", ["bench_intake.py"]),
    ("server", ["bench_server.py"]),
    ("routing_pure", ["bench_routing_pure.py"]),
    ("allocation", ["bench_allocation.py"]),
    ("smtp", ["bench_smtp.py"]),
    ("relay", ["bench_relay.py"]),
    ("web", ["bench_web.py"]),
    ("login", ["bench_login.py"]),
    ("gap", ["bench_gap.py"]),
    ("reporting", ["bench_reporting.py"]),
    ("retention", ["bench_retention.py"]),
    ("services", ["bench_services.py"]),
    ("stable", ["bench_stable.py"]),
    ("shortlist", ["bench_shortlist.py"]),
    ("replay", ["bench_replay.py"]),
]
QUICK_ARGS = {
    "routing_pure": ["100000"],
    "smtp": ["--messages", "1000", "--rounds", "1"],
}


def _load(name: str) -> dict:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes only")
    ap.add_argument("--only", nargs="*", help="names of benches to run")
    args = ap.parse_args()
    failed = []
    timings = {}
    for name, cmd in BENCHES:
        if args.only and name not in args.only:
            continue
        if not (HERE / cmd[0]).exists():
            print(f"[bench] {name}: missing, skipped")
            continue
        quick = QUICK_ARGS.get(name, ["--quick"]) if args.quick else []
        full = [sys.executable, str(HERE / cmd[0]), *cmd[1:], *quick]
        print(f"[bench] {name}: {' '.join(full[1:])}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(full, cwd=HERE)
        timings[name] = round(time.perf_counter() - t0, 1)
        if proc.returncode != 0:
            failed.append(name)
    summary = {"quick": args.quick, "bench_wall_s": timings, "failed": failed,
               "results": {name: _load(name) for name, _ in BENCHES}}  # fmt: skip
    (RESULTS / "summary.json").write_text(
        json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"[bench] done; failed: {failed or 'none'}; results in {RESULTS}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""A one-shot relay process: drain the outbox once, then exit.

Why a separate, tiny entry point: crash tests (and operators) need a relay they can run as
its own process and kill at any moment, without the Prefect flow around it. It imports
only the engine and notifications (never Prefect) so it starts in about a second. It
prints ``ready`` once everything is imported and connected, then one JSON line of counts
when done — never an address or any other personal data.

Usage: ``python -m engine.outbox.worker --database-url URL --smtp-port P --lease-s S --chunk N``
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from engine.domain.clock import Clock
from engine.outbox.relay import default_worker_id, drain
from engine.store.db import Database
from engine.store.settings import Settings, load_settings


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; anything not given comes from the AIGUILLAGE_* environment."""
    parser = argparse.ArgumentParser(prog="python -m engine.outbox.worker", description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--smtp-host", default=None)
    parser.add_argument("--base-url", default=None, help="public URL links must point to")
    parser.add_argument("--lease-s", type=float, default=300.0, help="lease length in seconds")
    parser.add_argument("--chunk", type=int, default=200, help="rows claimed per lease")
    parser.add_argument("--max-chunks", type=int, default=None)
    parser.add_argument("--worker", default=None, help="worker id (default: host:pid)")
    return parser.parse_args(argv)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings built once from the arguments (overriding the environment)."""
    overrides: dict[str, object] = {"database_url": args.database_url, "smtp_port": args.smtp_port}
    if args.smtp_host:
        overrides["smtp_host"] = args.smtp_host
    if args.base_url:
        overrides["base_url"] = args.base_url
    return load_settings(**overrides)


def main(argv: Sequence[str] | None = None) -> int:
    """Drain every due message once; exit status 0 when the drain ran to its end."""
    args = parse_args(argv)
    settings = settings_from_args(args)
    db = Database(settings.database_url)
    try:
        with db.engine.connect():  # fail here, before "ready", if the database is unreachable
            pass
        print("ready", flush=True)
        report = drain(
            db,
            settings,
            clock=Clock.system(),
            worker=args.worker or default_worker_id(),
            chunk=args.chunk,
            lease_s=args.lease_s,
            max_chunks=args.max_chunks,
        )
    finally:
        db.dispose()
    print(json.dumps(report.as_dict()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

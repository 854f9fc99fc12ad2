"""A local mail sink for the demo: every message received becomes an .eml file.

Why: the demo machines are offline, yet people want to *see* the emails the
system sends. Pointing the relay at this sink (``--port 8025``) writes each
message under ``var/mail/`` where any mail client or a browser can open it.
Run ``python -m notifications.sink --dir var/mail --port 8025``; it stops on
SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from aiosmtpd.controller import Controller


class _EmlWriter:
    """aiosmtpd handler writing each message atomically as one .eml file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            n = next(self._counter)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        final = self.directory / f"{stamp}-{os.getpid()}-{n:06d}.eml"
        partial = final.with_suffix(".eml.part")
        data = envelope.original_content or envelope.content
        partial.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        partial.replace(final)  # readers never see a half-written file
        return "250 2.0.0 Message enregistré"


class MailSink:
    """An SMTP server on ``host:port`` that stores messages under ``directory``.

    Usable from code (``with MailSink(path, port=0) as sink: ...``; ``port=0``
    picks a free port, read it back from ``sink.port``) or from the command line.
    """

    def __init__(self, directory: str | Path, *, host: str = "127.0.0.1", port: int = 8025):
        self.directory = Path(directory)
        self.host = host
        self.port = port
        self._controller: Controller | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.port == 0:
            import socket

            with socket.socket() as s:
                s.bind((self.host, 0))
                self.port = int(s.getsockname()[1])
        self._controller = Controller(
            _EmlWriter(self.directory), hostname=self.host, port=self.port
        )
        self._controller.start()

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def files(self) -> list[Path]:
        """The .eml files received so far, oldest first."""
        return sorted(self.directory.glob("*.eml"))

    def __enter__(self) -> MailSink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(
        prog="python -m notifications.sink",
        description="Serveur SMTP local qui enregistre chaque message reçu en fichier .eml.",
    )
    parser.add_argument("--dir", default="var/mail", help="dossier des fichiers .eml")
    parser.add_argument("--host", default="127.0.0.1", help="adresse d'écoute")
    parser.add_argument("--port", type=int, default=8025, help="port d'écoute")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    sink = MailSink(args.dir, host=args.host, port=args.port)
    sink.start()
    print(
        f"Boîte de réception locale : smtp://{sink.host}:{sink.port} → {sink.directory}/",
        flush=True,
    )
    try:
        stop.wait()
    finally:
        sink.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

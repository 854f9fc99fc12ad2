"""A real SMTP server on loopback that tests can make fail on purpose.

Why: delivery code is only trustworthy if it has met the failures it claims to
handle — 4xx and 5xx answers, a server that stalls past the client timeout, a
connection dropped mid-message, a server that is down and comes back. This is
aiosmtpd on 127.0.0.1 with a free port, switchable between those behaviours at
run time, counting the TCP connections it accepted.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Literal

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

Mode = Literal["ok", "refuse_451", "reject_550", "stall", "drop", "down", "up"]

ANSWER_451 = "451 4.3.0 Erreur temporaire du serveur, réessayez plus tard"
ANSWER_550 = "550 5.1.1 Adresse du destinataire inconnue"


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the server accepted, as it arrived on the wire."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Handler:
    """aiosmtpd handler whose answers depend on the server's current mode."""

    def __init__(self, owner: SmtpTestServer) -> None:
        self.owner = owner

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.owner.mode == "reject_550":
            return ANSWER_550
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        mode = self.owner.mode
        if mode == "refuse_451":
            return ANSWER_451
        if mode == "stall":
            await asyncio.sleep(self.owner.stall_seconds)
        if mode == "drop":
            server.transport.abort()  # type: ignore[union-attr]
            return "421 connexion fermée"
        self.owner._store(
            ReceivedMessage(envelope.mail_from, tuple(envelope.rcpt_tos), envelope.content)
        )
        return "250 2.0.0 Message accepté"


class _Controller(Controller):
    """Controller whose SMTP sessions report each accepted connection."""

    def __init__(self, owner: SmtpTestServer, **kwargs: Any) -> None:
        super().__init__(_Handler(owner), **kwargs)
        self.owner = owner

    def factory(self) -> SMTP:
        owner = self.owner

        class CountingSMTP(SMTP):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                owner._count_connection()
                super().connection_made(transport)

        return CountingSMTP(self.handler, **self.SMTP_kwargs)


class SmtpTestServer:
    """Loopback SMTP server with switchable failure modes (see ``set_mode``)."""

    def __init__(self, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port()
        self.mode: str = "ok"
        self.stall_seconds = 3.0
        self._lock = threading.Lock()
        self._messages: list[ReceivedMessage] = []
        self._connections = 0
        self._controller: _Controller | None = None

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        if self._controller is not None:
            return
        controller = _Controller(self, hostname=self.host, port=self.port)
        deadline = time.monotonic() + 5
        while True:  # the port may linger for a moment after a stop
            try:
                controller.start()
                break
            except (OSError, RuntimeError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._controller = controller
        with self._lock:  # forget the controller's own readiness probe
            self._connections -= 1

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def set_mode(self, mode: Mode) -> None:
        """Switch behaviour: 'down' stops listening, 'up' listens again in mode 'ok'."""
        if mode == "down":
            self.stop()
        elif self._controller is None:
            self.start()
        self.mode = "ok" if mode == "up" else mode

    # -- what happened -----------------------------------------------------
    def _store(self, message: ReceivedMessage) -> None:
        with self._lock:
            self._messages.append(message)

    def _count_connection(self) -> None:
        with self._lock:
            self._connections += 1

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self._messages)

    @property
    def connections(self) -> int:
        """TCP connections accepted since start (the readiness probe excluded)."""
        with self._lock:
            return self._connections

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            self._connections = 0

    def __enter__(self) -> SmtpTestServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpTestServer]:
    """A started loopback SMTP server in mode 'ok', on a fresh free port."""
    server = SmtpTestServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()

"""Deliver emails over one reused SMTP connection, classifying every failure.

Why: the outbox relay must mark a row sent the moment the server accepts it,
retry what may succeed later (4xx, timeouts, refused or dropped connections)
and park what never will (5xx for this message). Opening a connection per
message would cost a TCP and TLS handshake each time, so ``SmtpSender`` keeps
one connection open and reopens it transparently after it drops.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from email.message import Message
from types import TracebackType
from typing import Literal

import aiosmtplib

Status = Literal["sent", "transient", "permanent"]

# Failures at the connection level (greeting, EHLO, STARTTLS, AUTH): they say
# nothing about the message, so retrying later is right even on a 5xx code.
_CONNECTION_LEVEL = (
    aiosmtplib.SMTPConnectResponseError,
    aiosmtplib.SMTPHeloError,
    aiosmtplib.SMTPAuthenticationError,
    aiosmtplib.SMTPNotSupported,
)


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to reach the outgoing mail server."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    use_tls: bool = False
    timeout: float = 10
    validate_certs: bool = True


@dataclass(frozen=True)
class SendOutcome:
    """The result of one send: ``status`` plus the server's answer, for the outbox row."""

    status: Status
    code: int | None = None
    answer: str = ""

    @property
    def sent(self) -> bool:
        return self.status == "sent"


def classify(exc: BaseException) -> Literal["transient", "permanent"]:
    """Say whether a delivery failure may succeed on retry.

    Transient: 4xx answers, timeouts, refused or dropped connections, and
    connection-level errors (greeting, EHLO, AUTH, STARTTLS) that concern the
    server rather than this message. Permanent: a 5xx answer to MAIL, RCPT or
    DATA, or a message the client cannot send at all (no recipient…).
    """
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        return "permanent" if codes and all(c >= 500 for c in codes) else "transient"
    if isinstance(exc, _CONNECTION_LEVEL):
        return "transient"
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return "permanent" if 500 <= exc.code < 600 else "transient"
    if isinstance(exc, (TimeoutError, ConnectionError, OSError, aiosmtplib.SMTPException)):
        return "transient"
    return "permanent"


def _describe(exc: BaseException) -> tuple[int | None, str]:
    """The server's code and answer, or a short description of what went wrong."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        first = exc.recipients[0]
        return first.code, first.message
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return exc.code, exc.message
    if isinstance(exc, TimeoutError):
        return None, f"timeout: {exc}" if str(exc) else "timeout"
    return None, f"{type(exc).__name__}: {exc}"


class SmtpSender:
    """An async context manager that sends many messages over one connection.

    The connection is opened lazily on the first ``send`` and reopened on the
    next ``send`` after any failure that may have left it unusable (timeout,
    drop, refused connection). ``connections_opened`` counts how many times.
    """

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._client: aiosmtplib.SMTP | None = None
        self.connections_opened = 0

    def _new_client(self) -> aiosmtplib.SMTP:
        c = self.config
        return aiosmtplib.SMTP(
            hostname=c.host,
            port=c.port,
            username=c.username,
            password=c.password,
            use_tls=c.use_tls,
            start_tls=c.starttls,
            timeout=c.timeout,
            validate_certs=c.validate_certs,
        )

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        self._discard()
        client = self._new_client()
        self._client = client
        await client.connect()
        self.connections_opened += 1
        return client

    def _discard(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None

    async def send(self, msg: Message) -> SendOutcome:
        """Send one message; never raises for delivery failures, returns the outcome."""
        try:
            client = await self._connected()
            _refused, answer = await client.send_message(msg)
        except (aiosmtplib.SMTPException, OSError, TimeoutError, ValueError) as exc:
            if not isinstance(
                exc, (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused)
            ) or isinstance(exc, _CONNECTION_LEVEL):
                # The connection may be half-way through a command: start afresh.
                self._discard()
            code, answer = _describe(exc)
            return SendOutcome(classify(exc), code, answer)
        # With several recipients, ``_refused`` may list some; the outbox sends one
        # recipient per message, so acceptance here means delivered to the relay.
        return SendOutcome("sent", 250, answer)

    async def close(self) -> None:
        """Say QUIT politely if still connected, then drop the connection."""
        client, self._client = self._client, None
        if client is None:
            return
        if client.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await client.quit()
        client.close()

    async def __aenter__(self) -> SmtpSender:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


__all__ = [
    "SendOutcome",
    "SmtpConfig",
    "SmtpSender",
    "classify",
]

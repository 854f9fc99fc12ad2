"""SMTP delivery against a real aiosmtpd server on loopback that fails on purpose.

Checks what the outbox relay relies on: one connection for many messages, the
right classification of each failure with the server's answer, transparent
reconnection, and a callback fired as soon as each message is accepted.
"""

from __future__ import annotations

import asyncio
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest

from notifications.render import build_email, message_id_for, render
from notifications.samples import sample_context
from notifications.sink import MailSink
from notifications.smtp import SendOutcome, SmtpConfig, SmtpSender, classify
from tests.support import smtp_server as smtp_support
from tests.support.smtp_server import SmtpTestServer

# The fixture also comes from tests/conftest.py; importing it here keeps this file standalone.
smtp_server = smtp_support.smtp_server

DOMAIN = "aiguillage.test"
SENDER = "Aiguillage <ne-pas-repondre@aiguillage.test>"


def make_message(key: str = "k-1", kind: str = "outcome_due") -> EmailMessage:
    return build_email(
        render(kind, sample_context(kind)),
        to="Camille <camille@chantier.test>",
        from_=SENDER,
        message_id=message_id_for(key, DOMAIN),
    )


def config_for(server: SmtpTestServer, timeout: float = 2.0) -> SmtpConfig:
    return SmtpConfig(host=server.host, port=server.port, timeout=timeout)


async def send_all(config: SmtpConfig, messages: list[EmailMessage]) -> list[SendOutcome]:
    async with SmtpSender(config) as sender:
        return [await sender.send(m) for m in messages]


def test_delivers_multipart_message_with_headers(smtp_server: SmtpTestServer) -> None:
    msg = make_message("referral:812:outcome_due")
    [outcome] = asyncio.run(send_all(config_for(smtp_server), [msg]))
    assert outcome.sent and outcome.code == 250
    assert "Message accepté" in outcome.answer  # the server's own answer is kept

    [received] = smtp_server.messages
    assert received.rcpt_tos == ("camille@chantier.test",)
    assert received.mail_from == "ne-pas-repondre@aiguillage.test"
    head = received.data.split(b"\r\n\r\n", 1)[0]
    assert b"=?utf-8?" in head  # the accented subject travels encoded
    parsed = received.message
    assert parsed["Subject"] == "Résultat à saisir pour l'orientation SAL-7F3K2Q"
    assert parsed["Message-ID"] == message_id_for("referral:812:outcome_due", DOMAIN)
    assert parsed.get_content_type() == "multipart/alternative"
    text, html = parsed.iter_parts()
    assert text.get_content_type() == "text/plain" and text.get_content_charset() == "utf-8"
    assert html.get_content_type() == "text/html" and html.get_content_charset() == "utf-8"
    assert "Merci d'indiquer avant le 1er avril 2025" in text.get_content()
    assert '<html lang="fr">' in html.get_content()


def test_many_messages_share_one_connection(smtp_server: SmtpTestServer) -> None:
    messages = [make_message(f"k-{i}") for i in range(40)]

    async def run() -> tuple[list[SendOutcome], int]:
        async with SmtpSender(config_for(smtp_server)) as sender:
            outcomes = [await sender.send(m) for m in messages]
            return outcomes, sender.connections_opened

    outcomes, opened = asyncio.run(run())
    assert all(o.sent for o in outcomes)
    assert opened == 1
    assert smtp_server.connections == 1
    ids = [m.message["Message-ID"] for m in smtp_server.messages]
    assert len(set(ids)) == 40


def test_451_is_transient_and_keeps_the_connection(smtp_server: SmtpTestServer) -> None:
    async def run() -> tuple[SendOutcome, SendOutcome]:
        async with SmtpSender(config_for(smtp_server)) as sender:
            smtp_server.set_mode("refuse_451")
            refused = await sender.send(make_message("a"))
            smtp_server.set_mode("ok")
            return refused, await sender.send(make_message("b"))

    refused, then = asyncio.run(run())
    assert refused.status == "transient" and refused.code == 451
    assert "Erreur temporaire" in refused.answer
    assert then.sent
    assert [m.message["Message-ID"] for m in smtp_server.messages] == [message_id_for("b", DOMAIN)]
    assert smtp_server.connections == 1


def test_550_is_permanent_with_the_server_answer(smtp_server: SmtpTestServer) -> None:
    smtp_server.set_mode("reject_550")
    [outcome] = asyncio.run(send_all(config_for(smtp_server), [make_message()]))
    assert outcome.status == "permanent"
    assert outcome.code == 550
    assert "Adresse du destinataire inconnue" in outcome.answer
    assert smtp_server.messages == []


def test_stall_times_out_as_transient_then_reconnects(smtp_server: SmtpTestServer) -> None:
    smtp_server.stall_seconds = 3.0

    async def run() -> tuple[SendOutcome, SendOutcome, int]:
        async with SmtpSender(config_for(smtp_server, timeout=0.3)) as sender:
            smtp_server.set_mode("stall")
            stalled = await sender.send(make_message("a"))
            smtp_server.set_mode("ok")
            after = await sender.send(make_message("b"))
            return stalled, after, sender.connections_opened

    stalled, after, opened = asyncio.run(run())
    assert stalled.status == "transient" and stalled.code is None
    assert "timeout" in stalled.answer.lower() or "timed out" in stalled.answer.lower()
    assert after.sent
    assert opened == 2  # the stalled connection was abandoned, a fresh one used


def test_drop_mid_message_is_transient_then_reconnects(smtp_server: SmtpTestServer) -> None:
    async def run() -> tuple[SendOutcome, SendOutcome]:
        async with SmtpSender(config_for(smtp_server)) as sender:
            smtp_server.set_mode("drop")
            dropped = await sender.send(make_message("a"))
            smtp_server.set_mode("ok")
            return dropped, await sender.send(make_message("b"))

    dropped, after = asyncio.run(run())
    assert dropped.status == "transient" and dropped.code is None
    assert after.sent
    assert len(smtp_server.messages) == 1
    assert smtp_server.connections == 2


def test_down_is_refused_as_transient_then_up_sends(smtp_server: SmtpTestServer) -> None:
    smtp_server.set_mode("down")

    async def run() -> tuple[SendOutcome, SendOutcome]:
        async with SmtpSender(config_for(smtp_server)) as sender:
            refused = await sender.send(make_message("a"))
            await asyncio.to_thread(smtp_server.set_mode, "up")
            return refused, await sender.send(make_message("a"))

    refused, after = asyncio.run(run())
    assert refused.status == "transient" and refused.code is None
    assert "connect" in refused.answer.lower()
    assert after.sent
    assert [m.message["Message-ID"] for m in smtp_server.messages] == [message_id_for("a", DOMAIN)]


def test_server_going_down_under_an_open_connection(smtp_server: SmtpTestServer) -> None:
    async def run() -> list[SendOutcome]:
        async with SmtpSender(config_for(smtp_server)) as sender:
            first = await sender.send(make_message("a"))
            await asyncio.to_thread(smtp_server.set_mode, "down")
            lost = await sender.send(make_message("b"))
            await asyncio.to_thread(smtp_server.set_mode, "up")
            return [first, lost, await sender.send(make_message("b"))]

    first, lost, again = asyncio.run(run())
    assert first.sent and lost.status == "transient" and again.sent
    assert [m.message["Message-ID"] for m in smtp_server.messages] == [
        message_id_for("a", DOMAIN),
        message_id_for("b", DOMAIN),
    ]


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (aiosmtplib.SMTPDataError(451, "try later"), "transient"),
        (aiosmtplib.SMTPDataError(554, "rejected"), "permanent"),
        (aiosmtplib.SMTPSenderRefused(550, "no", "a@b.c"), "permanent"),
        (
            aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "no", "a")]),
            "permanent",
        ),
        (
            aiosmtplib.SMTPRecipientsRefused(
                [
                    aiosmtplib.SMTPRecipientRefused(550, "no", "a"),
                    aiosmtplib.SMTPRecipientRefused(452, "full", "b"),
                ]
            ),
            "transient",
        ),
        (aiosmtplib.SMTPServerDisconnected("gone"), "transient"),
        (aiosmtplib.SMTPConnectError("refused"), "transient"),
        (aiosmtplib.SMTPReadTimeoutError("slow"), "transient"),
        (aiosmtplib.SMTPAuthenticationError(535, "bad credentials"), "transient"),
        (aiosmtplib.SMTPConnectResponseError(554, "go away"), "transient"),
        (ConnectionRefusedError(111, "refused"), "transient"),
        (TimeoutError(), "transient"),
        (ValueError("No recipient headers provided in message"), "permanent"),
    ],
)
def test_classify(exc: BaseException, expected: str) -> None:
    assert classify(exc) == expected


def test_mail_sink_writes_eml_files(tmp_path: Path) -> None:
    with MailSink(tmp_path / "mail", port=0) as sink:
        outcomes = asyncio.run(
            send_all(SmtpConfig(sink.host, sink.port), [make_message("a"), make_message("b")])
        )
        files = sink.files()
    assert [o.status for o in outcomes] == ["sent", "sent"]
    assert len(files) == 2
    ids = {message_from_bytes(f.read_bytes(), policy=policy.default)["Message-ID"] for f in files}
    assert ids == {message_id_for("a", DOMAIN), message_id_for("b", DOMAIN)}
    assert not list((tmp_path / "mail").glob("*.part"))

"""A partner contact's day in Chromium: one digest mail in a real SMTP sink, the signed link
opened from it, the orientation accepted, the contact person and the next step shown — and
the chargé·e's outbox really holds the message telling them (issue #13, item 5)."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.access.tokens import LinkError, read_partner_token
from engine.domain.clock import Clock
from engine.outbox.digest import write_due_digests
from engine.outbox.relay import drain
from engine.store import models as m
from engine.store.settings import Settings
from tests.e2e.conftest import shot

pytestmark = pytest.mark.browser
LINK_RE = re.compile(r"https?://\S+/partenaire/reponse/\S+")


def _link_for(mail_text: str, settings: Settings, referral_id: int, now) -> str:  # type: ignore[no-untyped-def]
    """The answer link of one orientation among the digest's lines."""
    secret = settings.secret_key.get_secret_value()
    for url in LINK_RE.findall(mail_text):
        try:
            rid, _ = read_partner_token(
                secret, url.rsplit("/", 1)[1], max_age_s=settings.partner_expiry_days * 86400,
                now=now,
            )  # fmt: skip
        except LinkError:
            continue
        if rid == referral_id:
            return url
    raise AssertionError("the digest has no link for this orientation")


def test_partner_reads_the_digest_accepts_and_sees_who_follows_up(page, served, smtp_server):
    base, world = served
    with world.db.sessions() as s:
        contact = s.get(m.StaffUser, world.user_ids["partner"])
        owner = s.get(m.StaffUser, s.get(m.Referral, world.target_id).owner_user_id)
        contact_email, owner_id, owner_name = contact.email, owner.id, owner.display_name
    settings = Settings(database_url=world.db.url, base_url=base, smtp_host="127.0.0.1",
                        smtp_port=smtp_server.port, smtp_timeout_s=5.0)  # fmt: skip
    clock = Clock.fixed(world.clock.now() + timedelta(minutes=1))
    assert write_due_digests(world.db, settings, clock=clock) >= 1
    # Playwright's sync API runs an event loop in this thread: the relay's own asyncio loop
    # runs in another one, as it does in the notifications flow.
    relay = threading.Thread(target=drain, args=(world.db, settings), kwargs={"clock": clock})
    relay.start()
    relay.join(timeout=60)

    mails = [msg.message for msg in smtp_server.messages if contact_email in msg.rcpt_tos]
    assert len(mails) == 1, "one digest, not one mail per orientation"
    assert "en attente de votre réponse" in str(mails[0]["Subject"])
    text = mails[0].get_body(("plain",)).get_content()
    assert world.reference in text and "sans compte ni mot de passe" in text
    assert world.identity_last_name not in text
    url = _link_for(text, settings, world.target_id, clock.now())

    page.goto(url)
    assert page.get_by_role("heading", level=1).inner_text().startswith("Orientation SAL-")
    assert owner_name in page.locator("#contact").inner_text()
    page.get_by_role("button", name="Accepter l'orientation").click()
    page.get_by_text("l'orientation est acceptée").wait_for()
    step = page.locator("#next-step").inner_text()
    assert "Prochaine étape" in step and owner_name in step
    assert "en est informé·e dans son récapitulatif quotidien" in step
    assert owner_name in page.locator("#contact").inner_text()
    shot(page, "partner_digest")

    with world.db.sessions() as s:
        assert s.get(m.Referral, world.target_id).state == "accepted"
        told = s.scalars(
            select(m.OutboxMessage).where(
                m.OutboxMessage.kind == "partner_answered",
                m.OutboxMessage.referral_id == world.target_id,
            )
        ).all()
    assert [(t.recipient_user_id, t.context["answer"]) for t in told] == [(owner_id, "acceptée")]

"""Every link a mail carries opens a page of the app (a wrong path is a 404 in a mailbox)."""

from __future__ import annotations

import inspect
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.routing import Match

from engine.deadlines import write_due_reminders
from engine.domain.clock import Clock
from engine.outbox.messages import Links
from engine.store import models as m
from engine.store.db import unit_of_work
from tests.web.world import csrf_of, login
from web.app import create_app

BASE = "http://testserver"
SAMPLE = {int: 7, str: "jeton-signe"}


def _links_paths() -> dict[str, str]:
    links = Links(BASE)
    out = {}
    for name, fn in inspect.getmembers(Links, inspect.isfunction):
        if name.startswith("_"):
            continue
        params = list(inspect.signature(fn).parameters.values())[1:]
        args = [SAMPLE[{"int": int, "str": str}[p.annotation]] for p in params]
        url = getattr(links, name)(*args)
        assert url.startswith(BASE + "/"), name
        out[name] = url[len(BASE) :]
    return out


def test_every_links_method_is_a_registered_get_route(app):
    paths = _links_paths()
    assert {"queue", "case", "allocations", "preferences", "partner_answer"} <= set(paths)
    for name, path in paths.items():
        scope = {"type": "http", "path": path, "method": "GET", "root_path": ""}
        matched = [r for r in app.routes if r.matches(scope)[0] is Match.FULL]
        assert matched, f"Links.{name}() → {path} is no page of the app"


def test_the_follow_up_mail_opens_its_form_and_the_cip_records_the_answer(world_db):
    """A CVG salarié·e who left three months ago: the CIP's mail opens the follow-up form,
    and the answer is stored once."""
    world = world_db
    with unit_of_work(world.db) as s:
        cip = s.get(m.StaffUser, world.user_ids["cip"])
        person = s.scalar(
            select(m.Salarie)
            .where(m.Salarie.chantier_id == cip.chantier_id, m.Salarie.programme == "cvg")
            .order_by(m.Salarie.id)
        )
        assert person is not None, "the seed has a CVG salarié·e on this chantier"
        person.exit_date = world.clock.today() - timedelta(days=92)
        person.exit_category = "emploi_transition"
        person_id = person.id
    write_due_reminders(world.db, world.settings, clock=Clock.fixed(world.clock.now()))
    with world.db.sessions() as s:
        row = s.scalar(
            select(m.OutboxMessage).where(
                m.OutboxMessage.kind == "followup_due",
                m.OutboxMessage.idempotency_key.like(f"followup_due:{person_id}:3:%"),
            )
        )
    assert row is not None
    url = row.context["url"]
    assert url == f"{BASE}/salaries/{person_id}/suivi/3"
    client = TestClient(create_app(world.settings, world.db, world.clock))
    assert login(client, world.emails["cip"]).status_code == 303
    page = client.get(url[len(BASE) :])
    assert page.status_code == 200
    assert row.context["reference"] in page.text and "Situation professionnelle" in page.text
    answer = {"csrf_token": csrf_of(page.text), "situation": "emploi_durable", "housed": "oui"}
    done = client.post(url[len(BASE) :], data=answer, follow_redirects=False)
    assert done.status_code == 303
    again = client.post(url[len(BASE) :], data=answer, follow_redirects=False)
    assert again.status_code == 422 and "déjà enregistré" in again.text
    with world.db.sessions() as s:
        stored = s.scalars(select(m.FollowUp).where(m.FollowUp.salarie_id == person_id)).one()
        assert (stored.months, stored.situation, stored.housed) == (3, "emploi_durable", True)

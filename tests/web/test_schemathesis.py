"""Property-based API testing from ``/openapi.json`` (schemathesis): whatever the generated
ids, strings and bodies, the API never answers 5xx — as the national admin and as a chargé·e.

The example count is bounded (``max_examples``) so that ``make test`` stays fast; the
generated calls really reach the database (a seeded SQLite network of this module's own).
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from engine.store.db import Database
from engine.store.migrate import upgrade
from tests.web.world import World, build_world, login
from web.app import create_app


@pytest.fixture(scope="module")
def fuzz_world(tmp_path_factory) -> World:
    """A network of its own: generated calls may change it (take, cancel…)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}"
    upgrade(url)
    db = Database(url)
    yield build_world(db)
    db.dispose()


@pytest.fixture(scope="module")
def api_app(fuzz_world: World):  # type: ignore[no-untyped-def]
    return create_app(fuzz_world.settings, fuzz_world.db, fuzz_world.clock)


@pytest.fixture(scope="module")
def api_schema(api_app):  # type: ignore[no-untyped-def]
    return schemathesis.openapi.from_asgi("/openapi.json", api_app)


@pytest.fixture(scope="module")
def sessions(api_app, fuzz_world: World) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """(cookies, headers) of a logged-in admin and officer."""
    out = {}
    for role in ("admin", "officer"):
        client = TestClient(api_app)
        assert login(client, fuzz_world.emails[role]).status_code == 303
        token = client.get("/api/v1/me").json()["csrf_token"]
        out[role] = (dict(client.cookies), {"X-CSRF-Token": token})
    return out


def _fuzz(schema, session) -> int:  # type: ignore[no-untyped-def]
    """Every operation of the schema, ``max_examples`` generated calls each; returns how many
    calls were made. (Driven through hypothesis directly: schemathesis' pytest plugin does
    not load with this pytest.)"""
    cookies, headers = session
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None)  # fmt: skip
        def run(case) -> None:  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += 1
            case.call_and_validate(cookies=cookies, headers=headers, checks=[not_a_server_error])

        run()
    return calls


def test_the_api_never_answers_5xx_to_the_national_admin(api_schema, sessions):  # type: ignore[no-untyped-def]
    assert _fuzz(api_schema, sessions["admin"]) > 50


def test_the_api_never_answers_5xx_to_an_officer(api_schema, sessions):  # type: ignore[no-untyped-def]
    assert _fuzz(api_schema, sessions["officer"]) > 50

"""Fixtures of the web tests: a seeded network (module-wide on SQLite) and logged-in clients."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engine.store.db import Database
from engine.store.migrate import upgrade
from tests.web.world import World, build_world, login
from web.app import create_app


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> World:
    """One seeded SQLite network for the read-mostly tests (matrix, pages, accessibility)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('web') / 'world.db'}"
    upgrade(url)
    db = Database(url)
    w = build_world(db)
    yield w
    db.dispose()


@pytest.fixture(scope="session")
def app(world):
    return create_app(world.settings, world.db, world.clock)


@pytest.fixture(scope="session")
def clients(app, world) -> dict[str, TestClient]:
    """One logged-in client per role key of the world (logged in once per session)."""
    out = {}
    for key, email in world.emails.items():
        client = TestClient(app)
        assert login(client, email).status_code == 303
        out[key] = client
    out["anonymous"] = TestClient(app)
    return out


@pytest.fixture
def world_db(db) -> World:
    """A fresh seeded network on each database kind (SQLite and PostgreSQL)."""
    return build_world(db)

"""Browser tests: the app served by uvicorn in a thread on a free loopback port, driven by
Playwright with Debian's Chromium (never a downloaded browser)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from engine.store.db import Database
from engine.store.migrate import upgrade
from tests.web.world import World, build_world

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(base URL, world) of a seeded SQLite network served on loopback."""
    uvicorn = pytest.importorskip("uvicorn")
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium introuvable dans /usr/bin/chromium")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'world.db'}"
    upgrade(url)
    db = Database(url)
    world: World = build_world(db, base_url=base)
    from web.app import create_app

    app = create_app(world.settings, db, world.clock)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield base, world
    server.should_exit = True
    thread.join(timeout=10)
    db.dispose()


@pytest.fixture(scope="package")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="fr-FR")
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    yield pg
    context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

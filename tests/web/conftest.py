"""Fixtures for the admin page: real headless Chromium (Debian's `chromium`) driven by
Playwright for Python, against a real `purgecache serve`.

The browser tests skip, saying why, when Playwright or Chromium is missing;
`scripts/setup-browser.sh VENV` installs both. `PURGECACHE_CHROMIUM` names another Chromium.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from web.admin_page import AdminPage

from conftest import LiveServer, start_server

CHROMIUM = Path(os.environ.get("PURGECACHE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole run."""
    sync_api = pytest.importorskip(
        "playwright.sync_api",
        reason="Playwright for Python is not installed (scripts/setup-browser.sh VENV installs it)",
    )
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (scripts/setup-browser.sh installs Debian's)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One SQLite server shared by a module's tests that read nothing back from its database
    (the page does not depend on the storage backend, so it is not run once per backend)."""
    live = start_server(tmp_path_factory.mktemp("page-server"))
    yield live
    live.stop()


@pytest.fixture
def open_admin(
    browser: Any, server_factory: Callable[..., LiveServer]
) -> Iterator[Callable[..., AdminPage]]:
    """Open the admin page of a fresh server in a fresh browser context (own session storage),
    on the open purge requests unless `path` says otherwise (`/` is the purge history).

    Every page must finish without script errors or Content-Security-Policy violations.
    """
    opened: list[AdminPage] = []

    def open_page(
        width: int = 1280,
        height: int = 900,
        server: LiveServer | None = None,
        path: str = "/?view=requests",
    ) -> AdminPage:
        context = browser.new_context(
            viewport={"width": width, "height": height},
            locale="en-US",
            timezone_id="Europe/Berlin",
        )
        admin = AdminPage(context.new_page(), server or server_factory())
        opened.append(admin)
        admin.open(path)
        return admin

    yield open_page
    for admin in opened:
        problems = list(admin.problems)
        admin.page.context.close()
        assert problems == [], "the page reported errors"

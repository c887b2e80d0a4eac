"""The admin page as the tests drive it: what a person would click and read."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from conftest import ADMIN, LiveServer
from hawk_signing import HawkAuth

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("PURGECACHE_SCREENSHOTS", REPO / ".ci-work" / "screenshots"))
# The two screen sizes a behaviour is checked at: a desktop window and a phone (360 px wide).
sizes = pytest.mark.parametrize("width", [1280, 360], ids=["desktop", "phone"])
# The browser logs every non-2xx fetch; refused API calls are expected and shown on the page.
EXPECTED_CONSOLE = re.compile(
    r"^Failed to load resource: the server responded with a status of 4\d\d"
)


class AdminPage:
    """One browser tab on the admin page of one server; collects script errors as problems."""

    def __init__(self, page: Any, server: LiveServer) -> None:
        self.page = page
        self.server = server
        self.problems: list[str] = []
        self.api_requests: list[str] = []
        self.expected_console: list[str] = []  # console lines a test provokes on purpose
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("console", self._console)
        page.on("request", self._request)

    def _console(self, message: Any) -> None:
        if message.type not in ("error", "warning") or EXPECTED_CONSOLE.match(message.text):
            return
        if not any(text in message.text for text in self.expected_console):
            self.problems.append(f"console {message.type}: {message.text}")

    def _request(self, request: Any) -> None:
        if "/api/" in request.url:
            self.api_requests.append(f"{request.method} {request.url}")

    # ---- navigation ----------------------------------------------------------------------

    def open(self, path: str = "/") -> None:
        self.page.goto(self.server.root_url + path)
        self.wait_until_ready()

    def reload(self) -> None:
        self.page.reload()
        self.wait_until_ready()

    def wait_until_ready(self) -> None:
        self.page.wait_for_selector("body[data-ready]")
        self.page.wait_for_selector("#requests:not([aria-busy])", state="attached")
        self.page.wait_for_selector("#history:not([aria-busy])", state="attached")
        for panel in ("#convergence-result", "#inventory-result", "#selector"):
            self.page.wait_for_selector(f"{panel}:not([aria-busy])", state="attached")

    def section(self, name: str) -> Any:
        return self.page.get_by_role("region", name=name)

    def fail_reads(self, pattern: str) -> None:
        """From now on the page's requests matching `pattern` fail with a 503 (a service
        restarting), whose line in the browser's console is then expected."""
        body = json.dumps(
            {"code": "ServiceUnavailable", "message": "restarting", "requestInfo": {}}
        )
        self.expected_console.append("the server responded with a status of 503")
        self.page.route(
            pattern,
            lambda route: route.fulfill(status=503, content_type="application/json", body=body),
        )

    # ---- sign in and out -------------------------------------------------------------------

    def fill_credentials(self, client_id: str, token: str, certificate: str | None = None) -> None:
        self.page.get_by_label("Client ID").fill(client_id)
        self.page.get_by_label("Access token").fill(token)
        if certificate is not None:
            self.page.get_by_label("Certificate").fill(certificate)
        self.page.get_by_role("button", name="Sign in").click()

    def sign_in(self, client_id: str, token: str, certificate: str | None = None) -> None:
        self.fill_credentials(client_id, token, certificate)
        self.page.get_by_role("button", name="Sign out").wait_for()
        self.wait_until_ready()

    def sign_out(self) -> None:
        self.page.get_by_role("button", name="Sign out").click()
        self.page.get_by_role("button", name="Sign in").wait_for()
        self.wait_until_ready()

    def stored_credentials(self) -> Any:
        return self.page.evaluate("() => sessionStorage.getItem('purgecache.credentials')")

    # ---- purging -----------------------------------------------------------------------------

    def review_purge(self, pool: str, *cache_names: str) -> None:
        create = self.section("Request a purge")
        create.get_by_label("Worker pool").fill(pool)
        create.get_by_label("Cache names").fill("\n".join(cache_names))
        create.get_by_role("button", name="Review purge…").click()

    def purge(self, pool: str, *cache_names: str) -> str:
        """Request purges through the form and its confirmation; the outcome heading."""
        self.review_purge(pool, *cache_names)
        return self.purge_confirmed(len(cache_names))

    def posts(self) -> list[str]:
        """The API requests the page sent that change something (purges), in order."""
        return [request for request in self.api_requests if request.startswith("POST")]

    def purge_confirmed(self, count: int) -> str:
        """Confirm the purge of `count` caches under review; the outcome heading."""
        self.page.get_by_role(
            "button", name=f"Purge {count} {'cache' if count == 1 else 'caches'}"
        ).click()
        heading = self.page.locator("#purge-result h3")
        heading.wait_for()
        self.wait_until_ready()
        return str(heading.inner_text())

    # ---- the table -------------------------------------------------------------------------

    def table_rows(self) -> list[tuple[str, str]]:
        """(pool, cache name) of each row of the open purge requests table, in order."""
        rows = self.page.locator("#requests-rows tr")
        return [
            (
                rows.nth(i).locator("td").nth(0).inner_text(),
                rows.nth(i).locator("td").nth(1).inner_text(),
            )
            for i in range(rows.count())
        ]

    def status(self) -> str:
        return str(self.page.locator("#requests-status").inner_text())

    def filter(self, pool: str = "", cache: str = "") -> None:
        self.page.get_by_label("Pool contains").fill(pool)
        self.page.get_by_label("Cache name contains").fill(cache)
        self.page.get_by_role("button", name="Filter", exact=True).click()
        self.wait_until_ready()

    def set_page_size(self, size: int) -> None:
        self.page.get_by_label("Rows per page").select_option(str(size))
        self.wait_until_ready()

    def next_page(self) -> None:
        self.page.get_by_role("button", name="Next page").last.click()
        self.wait_until_ready()

    def previous_page(self) -> None:
        self.page.get_by_role("button", name="Previous page").last.click()
        self.wait_until_ready()

    def section_screenshot(self, name: str, file_name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / file_name
        self.section(name).screenshot(path=str(path))
        return path

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / name
        self.page.screenshot(path=str(path), full_page=True)
        return path


def admin_api(server: LiveServer, client: tuple[str, str] = ADMIN) -> httpx.Client:
    """The API as the admin (or `client`), for seeding and for checking what the page shows."""
    return httpx.Client(base_url=server.api, auth=HawkAuth(*client), timeout=10)


def seed(server: LiveServer, pairs: list[tuple[str, str]]) -> None:
    """Purge requests made directly through the API, as another operator would."""
    with admin_api(server) as api:
        for pool, cache_name in pairs:
            reply = api.post(
                f"/purge-cache/{pool.replace('/', '%2F')}", json={"cacheName": cache_name}
            )
            assert reply.status_code == 204, reply.text


def report(server: LiveServer, pool: str, worker: str, **body: Any) -> None:
    """A worker's reportWorkerSync (as the purgecache agent sends it), made as the admin."""
    body = {"workerGroup": "local", "workerId": worker, **body}
    with admin_api(server) as api:
        answer = api.post(f"/ext/report/{quote(pool, safe='')}", json=body)
        assert answer.status_code == 204, answer.text


def all_requests(server: LiveServer) -> list[dict[str, str]]:
    """Every open purge request, in the API's order, read through every page."""
    found: list[dict[str, str]] = []
    token = None
    with admin_api(server) as api:
        while True:
            params = {"limit": "1000", **({"continuationToken": token} if token else {})}
            page = api.get("/purge-cache/list", params=params).json()
            found += page["requests"]
            token = page.get("continuationToken")
            if not token:
                return found


class Gate:
    """A slow server, on demand: the page's API requests that `holds` picks wait (still going to
    the real server) until the test releases them, in the order it chooses."""

    def __init__(self, page: Any, holds: Any) -> None:
        self.page = page
        self.holds = holds
        self.held: list[Any] = []
        page.route("**/api/purge-cache/v1/**", self._route)

    def _route(self, route: Any) -> None:
        if self.holds(route.request):
            self.held.append(route)
        else:
            route.continue_()

    def wait_for(self, count: int) -> None:
        """Until `count` requests are held."""
        for _ in range(500):
            if len(self.held) >= count:
                return
            self.page.wait_for_timeout(10)
        raise AssertionError(f"{len(self.held)} requests held, expected {count}")

    def stop(self) -> None:
        """Hold nothing more, and let through what is held."""
        self.holds = lambda request: False
        self.release()

    def release(self, *, newest_first: bool = False) -> None:
        """Let every held request through (ones the page cancelled meanwhile stay cancelled)."""
        from playwright.sync_api import Error  # imported here: the module loads without it

        routes, self.held = self.held, []
        for route in reversed(routes) if newest_first else routes:
            with contextlib.suppress(Error):
                route.continue_()


def seed_database(data_dir: Path, pairs: Iterable[tuple[str, str]]) -> None:
    """Many purge requests written through the storage interface into the SQLite file that a
    server started on `data_dir` will open (much faster than one API call each)."""
    from purgecache.model import PurgeRequest
    from purgecache.storage.sqlite import SqliteStorage

    now = int(time.time() * 1000)
    rows = [PurgeRequest(pool, name, now, now + 86_400_000) for pool, name in pairs]

    async def write() -> None:
        storage = SqliteStorage(data_dir / "purgecache.db")
        await storage.upgrade()
        await storage.put_many([(row, row.to_entry()) for row in rows])
        await storage.close()

    data_dir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(1) as thread:  # Playwright's loop runs in this one
        thread.submit(asyncio.run, write()).result()

"""The per-pool view in headless Chromium: exactly the purgeRequests reply a worker receives."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from web.admin_page import AdminPage, admin_api, seed, sizes

from conftest import ADMIN, LiveServer

OpenAdmin = Callable[..., AdminPage]
VIEW = "What the workers of a pool receive"


def worker_reply(admin: AdminPage, pool: str, since: str | None = None) -> Any:
    with admin_api(admin.server) as api:
        params = {"since": since} if since else {}
        return api.get(f"/purge-cache/{pool.replace('/', '%2F')}", params=params).json()


def ask(admin: AdminPage, pool: str, since: str = "") -> Any:
    """Fill in the view's form and press Show; the view's region."""
    view = admin.section(VIEW)
    view.get_by_label("Worker pool").fill(pool)
    view.get_by_label("Since").fill(since)
    view.get_by_role("button", name="Show").click()
    return view


def shown_reply(admin: AdminPage) -> Any:
    view = admin.section(VIEW)
    view.get_by_text("Exact reply (JSON), as a worker receives it").click()
    return json.loads(view.locator("details pre").inner_text())


def test_choosing_a_pool_in_the_table_shows_what_its_workers_receive(
    open_admin: OpenAdmin,
) -> None:
    """The pool's button opens the view; the JSON shown is the worker's reply, unchanged."""
    admin = open_admin()
    seed(admin.server, [("proj-a/linux", "sccache"), ("proj-a/linux", "checkouts"), ("b/c", "x")])
    admin.sign_in(*ADMIN)
    admin.page.get_by_role(
        "button", name="proj-a/linux: show what its workers receive"
    ).first.click()
    view = admin.section(VIEW)
    view.get_by_role("heading", name="Workers of proj-a/linux receive 2 purge requests").wait_for()
    assert admin.page.evaluate("() => document.activeElement.tagName") == "H3"
    assert shown_reply(admin) == worker_reply(admin, "proj-a/linux")
    assert view.locator("tbody tr").count() == 2


def test_since_narrows_the_reply_as_for_a_worker_that_last_asked_then(
    open_admin: OpenAdmin,
) -> None:
    """An ISO `since` is passed on; the reply shown is the API's reply for that `since`."""
    admin = open_admin()
    seed(admin.server, [("proj-s/linux", "old")])
    time.sleep(0.01)
    seed(admin.server, [("proj-s/linux", "new")])
    since = next(
        r["before"]
        for r in worker_reply(admin, "proj-s/linux")["requests"]
        if r["cacheName"] == "new"
    )
    admin.sign_in(*ADMIN)
    ask(admin, "proj-s/linux", since).get_by_role(
        "heading", name="receive 1 purge request"
    ).wait_for()
    reply = shown_reply(admin)
    assert reply == worker_reply(admin, "proj-s/linux", since=since)
    assert [r["cacheName"] for r in reply["requests"]] == ["new"]


def test_since_without_offset_is_utc_and_an_age_is_that_long_ago(
    open_admin: OpenAdmin, page_server: LiveServer
) -> None:
    """ "2020-01-01 12:00" is 12:00 UTC (as the CLI and the service read it), whatever the
    browser's zone (Europe/Berlin here); "2h" is two hours before now."""
    admin = open_admin(server=page_server)
    admin.sign_in(*ADMIN)
    view = ask(admin, "proj-s/linux", "2020-01-01 12:00")
    view.get_by_role("heading", name="(2020-01-01T12:00:00.000Z)").wait_for()
    assert any("since=2020-01-01T12%3A00%3A00.000Z" in r for r in admin.api_requests)
    started = time.time()
    ask(admin, "proj-s/linux", "2h").get_by_role("heading", name="made at or after").wait_for()
    sent = admin.api_requests[-1].split("since=")[1].replace("%3A", ":")
    ago = started - datetime.fromisoformat(sent).timestamp()
    assert 7200 - 5 <= ago <= 7200 + 5


# Characters a reader cannot see (format characters: zero-width, bidi override and isolate;
# a line separator; a no-break space), none of which JSON.stringify escapes.
HIDDEN_NAMES = [
    "zero\u200bwidth",
    "abc\u202edcba",
    "iso\u2066late\u2069",
    "line\u2028sep",
    "no\u00a0break",
]
RAW_HIDDEN = re.compile("[\u200b\u202a-\u202e\u2066-\u2069\u2028\u2029\u00a0]")


@sizes
def test_invisible_characters_are_escaped_in_the_json_and_marked_in_messages(
    open_admin: OpenAdmin, width: int
) -> None:
    """The exact reply writes them as \\uXXXX (still the worker's JSON); a refused purge's
    Taskcluster message marks them in the scope it names instead of showing them raw."""
    admin = open_admin(width=width)
    seed(admin.server, [("public/linux", name) for name in HIDDEN_NAMES])
    ask(admin, "public/linux").get_by_role("heading", name="receive 5 purge requests").wait_for()
    assert shown_reply(admin) == worker_reply(admin, "public/linux")
    text = admin.section(VIEW).locator("details pre").inner_text()
    assert not RAW_HIDDEN.search(text)
    assert '"abc\\u202edcba"' in text

    heading = admin.purge("proj-a/linux", "abc\u202edcba")
    assert heading == "Nothing was purged on proj-a/linux: the service refused."
    scope = admin.page.locator("#purge-result pre").first
    assert scope.inner_text() == "purge-cache:proj-a/linux:abc\\u{202E}dcba"
    assert scope.locator(".escape").get_attribute("title") == "U+202E"
    assert not RAW_HIDDEN.search(admin.page.locator("#purge-result").inner_text())

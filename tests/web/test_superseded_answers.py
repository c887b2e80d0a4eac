"""Answers that arrive late, with a slow server: a superseded request is cancelled or ignored,
and nothing fetched with credentials that were signed out is ever shown."""

from __future__ import annotations

from collections.abc import Callable

from web.admin_page import AdminPage, Gate, all_requests, seed, sizes

from conftest import ADMIN

OpenAdmin = Callable[..., AdminPage]
POOL_VIEW = "What the workers of a pool receive"
# How long a released answer is given to (wrongly) show up: the server is local, ms away.
SETTLE_MS = 500


@sizes
def test_two_quick_next_page_clicks_show_page_two_with_its_number(
    open_admin: OpenAdmin, width: int
) -> None:
    """Both clicks leave page 1 for page 2; the status and rows agree, whatever answers first."""
    admin = open_admin(width=width)
    seed(admin.server, [(f"proj-{i % 3}/linux", f"cache-{i:02d}") for i in range(30)])
    expected = [
        (f"{r['provisionerId']}/{r['workerType']}", r["cacheName"])
        for r in all_requests(admin.server)
    ]
    admin.sign_in(*ADMIN)
    admin.set_page_size(10)
    gate = Gate(admin.page, lambda request: "continuationToken=" in request.url)
    next_page = admin.page.get_by_role("button", name="Next page").last
    next_page.click()
    gate.wait_for(1)
    next_page.click()
    gate.wait_for(2)
    gate.release(newest_first=True)
    admin.wait_until_ready()
    admin.page.wait_for_timeout(SETTLE_MS)
    assert admin.status() == "Page 2: requests 11–20, more on the next page."
    assert admin.table_rows() == expected[10:20]


@sizes
def test_a_slow_pool_answer_never_replaces_the_pool_asked_for_since(
    open_admin: OpenAdmin,
    width: int,
) -> None:
    """Pool A (slow), then pool B: B's answer stays, A's late answer is dropped."""
    admin = open_admin(width=width)
    seed(admin.server, [("proj-slow/linux", "slow-cache"), ("proj-fast/linux", "fast-cache")])
    admin.sign_in(*ADMIN)
    gate = Gate(admin.page, lambda request: "proj-slow" in request.url)
    view = admin.section(POOL_VIEW)
    for pool in ("proj-slow/linux", "proj-fast/linux"):
        view.get_by_label("Worker pool").fill(pool)
        view.get_by_role("button", name="Show").click()
        if pool == "proj-slow/linux":
            gate.wait_for(1)
    view.get_by_role("heading", name="Workers of proj-fast/linux receive 1").wait_for()
    gate.release()
    admin.page.wait_for_timeout(SETTLE_MS)
    assert "Workers of proj-fast/linux" in view.locator("h3").inner_text()
    assert "slow-cache" not in view.inner_text()


@sizes
def test_an_answer_fetched_before_sign_out_is_never_shown(
    open_admin: OpenAdmin, width: int
) -> None:
    """A pool answer still on its way with the admin's credentials is dropped at sign-out."""
    admin = open_admin(width=width)
    seed(admin.server, [("proj-secret/linux", "secret-cache")])
    admin.sign_in(*ADMIN)
    gate = Gate(admin.page, lambda request: "proj-secret" in request.url)
    view = admin.section(POOL_VIEW)
    view.get_by_label("Worker pool").fill("proj-secret/linux")
    view.get_by_role("button", name="Show").click()
    gate.wait_for(1)
    admin.sign_out()
    gate.release()
    admin.page.wait_for_timeout(SETTLE_MS)
    assert "secret-cache" not in admin.page.locator("main").inner_text()
    # The pool stays chosen (it is in the URL) and is asked again without credentials.
    assert "Not allowed without credentials" in view.locator("#pool-result").inner_text()

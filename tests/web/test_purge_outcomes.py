"""What the page says while work is slow or fails: progress, one summary for a bulk purge,
purges whose fate is not known, a refresh that fails, and credentials revoked meanwhile."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

from web.admin_page import AdminPage, Gate, admin_api, seed, sizes

from conftest import ADMIN, CLIENTS_TOML, LIMITED, LiveServer

OpenAdmin = Callable[..., AdminPage]
CONNECTION_REFUSED = "Failed to load resource: net::ERR_CONNECTION_REFUSED"


@sizes
def test_a_bulk_purge_that_mostly_fails_is_one_summary_with_a_retry(
    open_admin: OpenAdmin, page_server: LiveServer, width: int
) -> None:
    """60 names, 59 refused for one reason: one heading, two groups, no alert per cache, a
    short outcome (it was 22,886 px), and "Retry" reviews exactly the 59 again."""
    admin = open_admin(width=width, server=page_server)
    admin.sign_in(*LIMITED)
    names = ["cache-1", *(f"other-{i:02d}" for i in range(59))]
    heading = admin.purge("proj-a/linux", *names)
    assert heading == "Purge requested for 1 of 60 caches on proj-a/linux; 59 refused."
    result = admin.page.locator("#purge-result")
    assert result.locator("[role=alert]").count() == 0
    assert result.locator(".outcome-group").count() == 2
    refused = result.locator(".outcome-group.refused")
    assert refused.inner_text().startswith("Refused 59 caches")
    assert "(403 InsufficientScopes)" in refused.inner_text()
    assert result.bounding_box()["height"] < 1200
    admin.page.get_by_role("button", name="Retry the 59 caches not purged…").click()
    confirm = admin.page.get_by_role("group", name="Confirm the purge")
    assert confirm.locator("#confirm-names li").all_inner_texts() == names[1:]
    assert admin.page.get_by_role("button", name="Purge 59 caches").is_visible()


@sizes
def test_slow_operations_show_their_progress(
    open_admin: OpenAdmin, page_server: LiveServer, width: int
) -> None:
    """Sign-in, the pool view and a bulk purge each say what they are waiting for."""
    admin = open_admin(width=width, server=page_server)
    gate = Gate(admin.page, lambda request: request.headers.get("authorization") is not None)
    admin.fill_credentials(*ADMIN)
    gate.wait_for(1)
    assert admin.page.get_by_role("status").filter(has_text="Checking the credentials").count()
    gate.release()
    admin.page.get_by_role("button", name="Sign out").wait_for()
    gate.wait_for(1)  # the table's first page
    gate.release()
    admin.wait_until_ready()

    view = admin.section("What the workers of a pool receive")
    view.get_by_label("Worker pool").fill("proj-p/linux")
    view.get_by_role("button", name="Show").click()
    gate.wait_for(1)
    assert "Asking the service what the workers of proj-p/linux receive" in view.inner_text()
    gate.release()
    view.get_by_role("heading", name="Workers of proj-p/linux receive").wait_for()
    assert view.locator("#pool-status").inner_text() == ""

    admin.review_purge("proj-p/linux", "one", "two")
    admin.page.get_by_role("button", name="Purge 2 caches").click()
    gate.wait_for(2)
    progress = admin.page.locator("#purge-progress")
    assert progress.inner_text() == "Purging… 0 of 2 caches done."
    gate.stop()  # the purges, then the table and the pool view read again
    admin.page.locator("#purge-result h3").wait_for()
    assert progress.inner_text() == ""
    admin.wait_until_ready()


@sizes
def test_a_purge_while_the_service_is_down_says_it_may_or_may_not_apply(
    open_admin: OpenAdmin, server_factory: Callable[..., LiveServer], width: int
) -> None:
    """No answer is not a refusal: the outcome is "not known", with a check; and the refresh
    that fails keeps the rows it had."""
    admin = open_admin(width=width, server=server_factory())
    seed(admin.server, [("proj-d/linux", "kept-row")])
    admin.sign_in(*ADMIN)
    assert admin.table_rows() == [("proj-d/linux", "kept-row")]
    admin.review_purge("proj-d/linux", "checkouts")
    admin.server.stop()
    heading = admin.purge_confirmed(1)
    assert heading == (
        "Not known whether the purge of 1 cache on proj-d/linux was applied: "
        "the service did not answer."
    )
    outcome = admin.page.locator("#purge-result").inner_text()
    assert "refused" not in outcome
    assert "may or may not have been applied" in outcome
    assert admin.page.get_by_role(
        "button", name="Check what the workers of proj-d/linux receive"
    ).is_visible()
    admin.page.locator("#requests-error .error").wait_for()
    assert admin.table_rows() == [("proj-d/linux", "kept-row")]
    assert "rows below are from the last read" in admin.status()
    admin.problems[:] = [p for p in admin.problems if CONNECTION_REFUSED not in p]


@sizes
def test_the_check_after_a_lost_answer_shows_the_purge_the_workers_receive(
    open_admin: OpenAdmin, width: int
) -> None:
    """The purge reached the service but its answer was lost (the connection reset): the
    outcome is "not known", and its check shows the pool as its workers see it, the cache
    listed with the time the purge gave it, and moves the reader there."""
    admin = open_admin(width=width)
    seed(admin.server, [("proj-l/linux", "kept")])
    admin.sign_in(*ADMIN)

    def lose_the_answer(route: Any) -> None:
        if route.request.method != "POST":
            return route.continue_()
        route.fetch()  # the service applies the purge...
        return route.abort("connectionreset")  # ...and the page never hears of it

    admin.expected_console.append("net::ERR_CONNECTION_RESET")
    admin.page.route("**/api/purge-cache/v1/purge-cache/*", lose_the_answer)
    heading = admin.purge("proj-l/linux", "checkouts")
    assert heading.startswith("Not known whether the purge of 1 cache on proj-l/linux")
    admin.page.get_by_role("button", name="Check what the workers of proj-l/linux receive").click()
    view = admin.section("What the workers of a pool receive")
    shown = view.get_by_role("heading", name="Workers of proj-l/linux receive 2 purge requests")
    shown.wait_for()
    assert admin.page.evaluate("() => document.activeElement.tagName") == "H3"
    with admin_api(admin.server) as api:
        reply = api.get("/purge-cache/proj-l%2Flinux").json()
    shown_rows = view.locator("tbody tr").evaluate_all(
        "rows => rows.map((row) => [row.cells[0].innerText, row.querySelector('time').dateTime])"
    )
    assert sorted(shown_rows) == sorted([r["cacheName"], r["before"]] for r in reply["requests"])
    assert "checkouts" in dict(shown_rows)


def test_a_token_revoked_meanwhile_leads_back_to_sign_in(
    open_admin: OpenAdmin, server_factory: Callable[..., LiveServer]
) -> None:
    """The admin's token is rotated on the server (clients file + SIGHUP): the next call's 401
    signs the tab out, says why, and puts the reader in the sign-in form."""
    server = server_factory()
    seed(server, [("proj-r/linux", "checkouts")])
    admin = open_admin(server=server)
    admin.sign_in(*ADMIN)
    clients = server.data_dir / "test-clients.toml"
    clients.write_text(CLIENTS_TOML.replace(ADMIN[1], "rotated-token-0123456789"))
    os.kill(server.process.pid, signal.SIGHUP)
    # The worker takes the new file in place (within its 1 s follow interval): wait until the
    # old token is refused, at most 10 s.
    with admin_api(server) as api:
        for _ in range(200):
            if api.get("/purge-cache/list").status_code == 401:
                break
            admin.page.wait_for_timeout(50)
    admin.page.get_by_role("button", name="Refresh").click()
    admin.page.get_by_role("button", name="Sign in").wait_for()
    assert admin.stored_credentials() is None
    assert admin.page.locator("#who").inner_text() == "Not signed in"
    error = admin.page.locator("#sign-in-error").inner_text()
    assert "no longer accepts the credentials of admin" in error
    assert admin.page.evaluate("() => document.activeElement.id") == "client-id"
    admin.wait_until_ready()
    assert admin.table_rows() == []

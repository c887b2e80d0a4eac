"""The purge history is the page's default view: newest first, filtered and counted by the
service, paged with its tokens, each event with who, when, from where and why (escaped; links
only http(s)); its state in the URL; a 403 explained and, without the extension, the open
purge requests instead."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from web.admin_page import AdminPage, admin_api, sizes

from conftest import ADMIN, LIMITED, READER, LiveServer

OpenAdmin = Callable[..., AdminPage]


def create_purges(
    server: LiveServer, purges: list[dict[str, str]], client: tuple[str, str] = ADMIN
) -> None:
    """Purges with reasons and links through `createPurge` by `client`, in order (so newest
    last)."""
    with admin_api(server, client) as api:
        for purge in purges:
            pool = purge.pop("pool")
            reply = api.post(f"/ext/purge/{pool.replace('/', '%2F')}", json=purge)
            assert reply.status_code == 200, reply.text
            time.sleep(0.002)  # distinct times, so newest first is one order


def history_rows(admin: AdminPage) -> list[tuple[str, str]]:
    """(pool, cache name) of each row of the history table, in order."""
    rows = admin.page.locator("#history-rows tr")
    return [
        (
            rows.nth(i).locator("td").nth(1).inner_text(),
            rows.nth(i).locator("td").nth(2).inner_text(),
        )
        for i in range(rows.count())
    ]


def history_status(admin: AdminPage) -> str:
    return str(admin.page.locator("#history-status").inner_text())


def query(admin: AdminPage) -> dict[str, list[str]]:
    return parse_qs(urlsplit(admin.page.url).query)


@sizes
def test_the_default_view_is_the_history_newest_first_filtered_counted_and_paged(
    open_admin: OpenAdmin,
    width: int,
) -> None:
    """Filters go to the service, which counts; the pager above and below pages with its tokens;
    filters, page and the selected purge are in the URL, survive a reload and Back."""
    admin = open_admin(width=width, path="/")
    create_purges(
        admin.server,
        [{"pool": f"proj-{i % 2}/linux", "cacheName": f"c-{i:02d}"} for i in range(25)],
    )
    admin.sign_in(*ADMIN)
    assert admin.page.get_by_role("region", name="Purge history").is_visible()
    assert not admin.page.get_by_role("region", name="Open purge requests").is_visible()
    assert history_status(admin) == "Purges 1–25 of 25, newest first."
    assert history_rows(admin)[0] == ("proj-0/linux", "c-24")

    admin.page.get_by_label("Pool is").fill("proj-1/linux")
    admin.page.get_by_role("button", name="Show purges").click()
    admin.wait_until_ready()
    admin.page.get_by_label("Purges per page").select_option("10")
    admin.wait_until_ready()
    assert history_status(admin) == "Purges 1–10 of 12 matching, newest first."
    pagers = admin.page.get_by_role("navigation", name="Pages of the purge history")
    assert pagers.count() == 2
    pagers.first.get_by_role("button", name="Next page").click()
    admin.wait_until_ready()
    newest = [f"c-{i:02d}" for i in range(23, 0, -2)]
    assert [name for _, name in history_rows(admin)] == newest[10:]
    assert history_status(admin) == "Purges 11–12 of 12 matching, newest first."
    assert pagers.last.get_by_role("button", name="Next page").is_disabled()

    admin.page.get_by_role("button", name="Select the purge of c-01").click()
    state = query(admin)
    assert state["pool"] == ["proj-1/linux"] and state["rows"] == ["10"]
    assert len(state["after"]) == 1 and len(state["event"]) == 1
    admin.reload()
    assert [name for _, name in history_rows(admin)] == newest[10:]
    selected = admin.page.locator("#history-rows tr.selected")
    assert selected.locator("td").nth(2).inner_text() == "c-01"
    assert admin.page.get_by_label("Pool is").input_value() == "proj-1/linux"

    admin.page.go_back()  # before the selection
    admin.wait_until_ready()
    assert admin.page.locator("#history-rows tr.selected").count() == 0
    admin.page.go_back()  # page 1
    admin.wait_until_ready()
    assert [name for _, name in history_rows(admin)] == newest[:10]


def show_purges(admin: AdminPage, **fields: str) -> None:
    """Fill in the history's filter fields (by label) and press "Show purges"."""
    for label, text in fields.items():
        admin.page.get_by_label(label.replace("_", " ").strip().capitalize(), exact=True).fill(text)
    admin.page.get_by_role("button", name="Show purges").click()
    admin.wait_until_ready()


@sizes
def test_the_history_filters_by_cache_client_and_time_and_explains_unclear_times(
    open_admin: OpenAdmin, width: int
) -> None:
    """ "Cache name is", "Purged by", From (inclusive) and Until (exclusive) go to the service,
    into the URL, and narrow the rows; a From of "5" or an Until of 12/04/2026 is refused at
    its field with the reason, and nothing is asked."""
    admin = open_admin(path="/", width=width)
    create_purges(
        admin.server,
        [
            {"pool": pool, "cacheName": name}
            for pool, name in [
                ("proj-a/linux", "alpha"),
                ("proj-b/linux", "alpha"),
                ("proj-a/linux", "beta"),
            ]
        ],
    )
    create_purges(admin.server, [{"pool": "proj-a/linux", "cacheName": "cache-1"}], LIMITED)
    with admin_api(admin.server) as api:
        times = [event["time"] for event in reversed(api.get("/ext/history").json()["events"])]
    admin.sign_in(*ADMIN)
    show_purges(admin, cache_name_is="alpha")
    assert history_rows(admin) == [("proj-b/linux", "alpha"), ("proj-a/linux", "alpha")]
    assert history_status(admin) == "Purges 1–2 of 2 matching, newest first."
    show_purges(admin, cache_name_is="", purged_by="limited")
    assert history_rows(admin) == [("proj-a/linux", "cache-1")]
    show_purges(admin, purged_by="", from_=times[1], until=times[3])
    assert history_rows(admin) == [("proj-a/linux", "beta"), ("proj-b/linux", "alpha")]
    assert query(admin) == {"from": [times[1]], "until": [times[3]]}

    asked = len(admin.api_requests)
    show_purges(admin, from_="5", until="12/04/2026")
    assert "a number without a unit" in admin.page.locator("#history-since-problem").inner_text()
    assert "could be read day first or month first" in (
        admin.page.locator("#history-until-problem").inner_text()
    )
    assert admin.page.evaluate("() => document.activeElement.id") == "history-since"
    assert len(admin.api_requests) == asked
    assert history_rows(admin) == [("proj-a/linux", "beta"), ("proj-b/linux", "alpha")]


@sizes
def test_a_failed_refresh_keeps_the_history_shown(open_admin: OpenAdmin, width: int) -> None:
    """The rows read before stay, under the error, and the status says they are from then."""
    admin = open_admin(path="/", width=width)
    create_purges(admin.server, [{"pool": "proj-a/linux", "cacheName": "kept-row"}])
    admin.sign_in(*ADMIN)
    admin.fail_reads("**/ext/history**")
    admin.page.get_by_role("button", name="Refresh history").click()
    admin.wait_until_ready()
    assert history_rows(admin) == [("proj-a/linux", "kept-row")]
    assert "rows below are from the last read" in history_status(admin)
    assert "(503 ServiceUnavailable)" in admin.page.locator("#history-error").inner_text()


def test_each_event_says_who_when_from_where_and_why_escaped(open_admin: OpenAdmin) -> None:
    """Time (UTC shown), pool, cache name and reason with invisible characters marked, client,
    address, signed spelling, User-Agent; an http(s) link is a noopener link, anything else
    (here a service sending `javascript:`) plain text."""
    admin = open_admin(path="/")
    create_purges(
        admin.server,
        [
            {
                "pool": "proj-a/linux",
                "cacheName": "odd\u200bname ",
                "reason": "two\nlines\u202e",
                "link": "https://bugs.example/1",
            },
            {
                "pool": "proj-a/linux",
                "cacheName": "plain",
                "reason": "r",
                "link": "https://bugs.example/2",
            },
        ],
    )

    def bad_link(route: Any) -> None:
        answer = route.fetch()
        body = answer.json()
        body["events"][0]["link"] = "javascript:alert(1)"
        route.fulfill(response=answer, body=json.dumps(body))

    admin.page.route("**/ext/history?**", bad_link)
    admin.sign_in(*ADMIN)
    first, second = (admin.page.locator("#history-rows tr").nth(i) for i in range(2))
    time_text = second.locator("td").nth(0).inner_text()
    with admin_api(admin.server) as api:
        events = api.get("/ext/history").json()["events"]
    assert events[1]["time"] in time_text
    assert second.locator("td").nth(2).inner_text() == "odd\\u{200B}name␣"
    assert second.locator("td").nth(4).inner_text().startswith("two\\nlines\\u{202E}")
    purged_by = second.locator("td").nth(3).inner_text()
    assert "admin" in purged_by and "127.0.0.1" in purged_by and "signed, pool as %2F" in purged_by
    assert "User-Agent: python-httpx/" in purged_by
    link = second.get_by_role("link", name="https://bugs.example/1")
    assert link.get_attribute("href") == "https://bugs.example/1"
    assert set((link.get_attribute("rel") or "").split()) >= {"noopener", "noreferrer"}
    assert first.get_by_role("link").count() == 0
    assert "javascript:alert(1)" in first.locator("td").nth(4).inner_text()


def test_each_event_says_whether_it_is_still_served_or_why_it_ended(
    open_admin: OpenAdmin,
) -> None:
    """A purge still served says open; one replaced by a newer purge of its cache says
    superseded, and one cancelled says cancelled, each with when (UTC shown)."""
    admin = open_admin(path="/")
    create_purges(
        admin.server,
        [{"pool": "proj-a/linux", "cacheName": name} for name in ("kept", "gone", "kept")],
    )
    with admin_api(admin.server) as api:
        cancelled = api.post("/ext/cancel/proj-a%2Flinux", json={"cacheName": "gone"})
        assert cancelled.status_code == 200, cancelled.text
        events = api.get("/ext/history").json()["events"]
    admin.sign_in(*ADMIN)
    rows = admin.page.locator("#history-rows tr")
    served = [rows.nth(i).locator("td").nth(5).inner_text() for i in range(rows.count())]
    assert [(e["cacheName"], e.get("endReason")) for e in events] == [
        ("kept", None),
        ("gone", "cancelled"),
        ("kept", "superseded"),
    ]
    assert served[0] == "open"
    assert served[1].startswith("ended: cancelled") and events[1]["ended"] in served[1]
    assert served[2].startswith("ended: superseded") and events[0]["time"] in served[2]


def test_a_purge_kept_until_applied_is_marked_so(open_admin: OpenAdmin) -> None:
    """The Served cell of a purge made with the until-applied policy says so, under open or
    how it ended; a purge of the normal policy has no such mark."""
    admin = open_admin(path="/")
    with admin_api(admin.server) as api:
        for cache, kept in (("normal", False), ("kept", True), ("kept", True)):
            body = {"cacheName": cache, "untilApplied": kept}
            reply = api.post("/ext/purge/proj-u%2Flinux", json=body)
            assert reply.status_code == 200, reply.text
            time.sleep(0.002)  # distinct times, so newest first is one order
    admin.sign_in(*ADMIN)
    rows = admin.page.locator("#history-rows tr")
    served = [rows.nth(i).locator("td").nth(5).inner_text().split("\n") for i in range(3)]
    assert served[0] == ["open", "until applied"]
    assert served[1][0].startswith("ended: superseded") and served[1][-1] == "until applied"
    assert served[2] == ["open"]


def test_without_the_history_scope_the_page_explains_the_403(open_admin: OpenAdmin) -> None:
    """A caller without purge-cache:history::* is told which scope is needed; the rest works."""
    admin = open_admin(path="/")
    admin.sign_in(*READER)
    message = admin.page.locator("#history-error").inner_text()
    assert "Reading the purge history needs the scope purge-cache:history::*" in message
    assert "these credentials do not hold" in message
    admin.page.get_by_role("button", name="Open purge requests", exact=True).click()
    admin.wait_until_ready()
    assert admin.status() == "There are no open purge requests."
    assert query(admin) == {"view": ["requests"]}


def test_against_a_service_without_the_extension_the_page_shows_the_open_requests(
    open_admin: OpenAdmin,
) -> None:
    """A 404 from listPurgeHistory (a Taskcluster deployment) falls back to the open purge
    requests, saying why."""
    admin = open_admin(path="/?pool=proj-a%2Flinux")
    not_found = {"code": "ResourceNotFound", "message": "No such endpoint", "requestInfo": {}}

    def taskcluster(route: Any) -> None:
        route.fulfill(status=404, content_type="application/json", body=json.dumps(not_found))

    admin.page.route("**/ext/history**", taskcluster)
    admin.sign_in(*ADMIN)
    note = admin.page.locator("#view-note").inner_text()
    assert "This service has no purge history" in note and "404 ResourceNotFound" in note
    assert admin.page.get_by_role("region", name="Open purge requests").is_visible()
    assert admin.status() == "There are no open purge requests."
    assert query(admin)["view"] == ["requests"]


def test_the_history_on_a_phone_does_not_scroll_sideways(open_admin: OpenAdmin) -> None:
    """At 360 px each event is a card with its labels; a long user agent and link wrap."""
    admin = open_admin(width=360, height=740, path="/")
    create_purges(
        admin.server,
        [
            {
                "pool": f"{'p' * 38}/{'w' * 38}",
                "cacheName": "c" * 60,
                "reason": "x" * 300,
                "link": "https://bugs.example/" + "y" * 300,
            }
        ],
    )
    admin.sign_in(*ADMIN)
    assert history_rows(admin)
    assert admin.page.evaluate("() => document.documentElement.scrollWidth") <= 360

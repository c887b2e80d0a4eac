"""The page's state in its URL: filters, order, page, rows per page and the pool shown survive a
reload and a shared link, and the browser's back and forward buttons step through them."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from web.admin_page import AdminPage, all_requests, seed, sizes

from conftest import ADMIN

OpenAdmin = Callable[..., AdminPage]
POOL_VIEW = "What the workers of a pool receive"


def query(admin: AdminPage) -> dict[str, list[str]]:
    return parse_qs(urlsplit(admin.page.url).query)


def listed(admin: AdminPage) -> list[tuple[str, str]]:
    return [
        (f"{r['provisionerId']}/{r['workerType']}", r["cacheName"])
        for r in all_requests(admin.server)
    ]


@sizes
def test_filters_and_pages_are_in_the_url_and_back_and_forward_step_through_them(
    open_admin: OpenAdmin,
    width: int,
) -> None:
    """Rows per page, a filter, its page 2 and a server page each become a history entry."""
    admin = open_admin(width=width)
    seed(admin.server, [(f"proj-{i % 3}/linux", f"cache-{i:02d}") for i in range(30)])
    rows = listed(admin)
    matches = [row for row in rows if "2" in row[1]]
    admin.sign_in(*ADMIN)
    admin.set_page_size(10)
    admin.next_page()
    assert query(admin)["rows"] == ["10"] and len(query(admin)["after"]) == 1
    admin.reload()
    assert admin.table_rows() == rows[10:20]
    assert admin.status() == "Page 2: requests 11–20, more on the next page."

    admin.filter(cache="2")
    admin.next_page()
    assert query(admin) == {"view": ["requests"], "cache": ["2"], "page": ["2"], "rows": ["10"]}
    admin.reload()
    assert admin.table_rows() == matches[10:]
    assert admin.page.get_by_label("Cache name contains").input_value() == "2"

    admin.page.go_back()
    admin.wait_until_ready()
    assert admin.table_rows() == matches[:10]
    admin.page.go_back()
    admin.wait_until_ready()
    assert admin.table_rows() == rows[10:20]
    assert admin.page.get_by_label("Cache name contains").input_value() == ""
    admin.page.go_forward()
    admin.wait_until_ready()
    assert admin.table_rows() == matches[:10]
    assert admin.status() == "12 of 30 open purge requests match (page 1 of 2)."


@sizes
def test_a_shared_link_shows_the_same_pool_and_order_after_signing_in(
    open_admin: OpenAdmin,
    width: int,
) -> None:
    """Another tab opened on the URL (signed in there) shows the same order and pool view."""
    admin = open_admin(width=width)
    seed(admin.server, [("proj-a/linux", "older")])
    time.sleep(0.005)
    seed(admin.server, [("proj-b/linux", "newer")])
    admin.sign_in(*ADMIN)
    admin.page.get_by_label("Order").select_option(label="Newest first")
    admin.page.get_by_role("button", name="Filter", exact=True).click()
    admin.wait_until_ready()
    admin.page.get_by_role("button", name="proj-a/linux: show what its workers receive").click()
    admin.section(POOL_VIEW).get_by_role("heading", name="Workers of proj-a/linux").wait_for()
    link = admin.page.url
    assert query(admin) == {"view": ["requests"], "order": ["newest"], "show": ["proj-a/linux"]}

    other = open_admin(width=width, server=admin.server)
    other.page.goto(link)
    other.wait_until_ready()
    steps = other.page.evaluate("() => history.length")
    other.sign_in(*ADMIN)
    assert [name for _, name in other.table_rows()] == ["newer", "older"]
    assert other.page.get_by_label("Order").input_value() == "newest"
    view = other.section(POOL_VIEW)
    view.get_by_role("heading", name="Workers of proj-a/linux receive 1").wait_for()
    assert other.page.evaluate("() => history.length") == steps, "signing in is no step"

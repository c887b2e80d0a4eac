"""The table of open purge requests in headless Chromium: server-side pages and filters that
search every request, not only the loaded page."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from web.admin_page import AdminPage, all_requests, seed, seed_database, sizes

from conftest import ADMIN, LiveServer

OpenAdmin = Callable[..., AdminPage]


def listed(server_rows: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(f"{r['provisionerId']}/{r['workerType']}", r["cacheName"]) for r in server_rows]


def test_paging_follows_continuation_tokens_forward_and_back(open_admin: OpenAdmin) -> None:
    """23 requests at 10 per page: pages of 10, 10 and 3 in the API's order, then back again."""
    admin = open_admin()
    seed(admin.server, [(f"proj-{i % 3}/linux", f"cache-{i:02d}") for i in range(23)])
    expected = listed(all_requests(admin.server))
    admin.sign_in(*ADMIN)
    admin.set_page_size(10)
    assert admin.table_rows() == expected[:10]
    assert admin.status() == "Page 1: requests 1–10, more on the next page."
    assert admin.page.get_by_role("button", name="Previous page").last.is_disabled()

    admin.next_page()
    assert admin.table_rows() == expected[10:20]
    assert any("continuationToken=" in r for r in admin.api_requests), "paged by the server"
    admin.next_page()
    assert admin.table_rows() == expected[20:]
    assert admin.status() == "Page 3: requests 21–23, the last page."
    assert admin.page.get_by_role("button", name="Next page").last.is_disabled()
    admin.previous_page()
    assert admin.table_rows() == expected[10:20]
    admin.previous_page()
    assert admin.table_rows() == expected[:10]


def test_filter_finds_rows_beyond_the_loaded_page(open_admin: OpenAdmin) -> None:
    """A cache-name filter finds the one match on the last server page; a pool filter a pool."""
    admin = open_admin()
    pairs = [(f"proj-{i % 3}/linux", f"cache-{i:02d}") for i in range(30)]
    seed(admin.server, [*pairs, ("proj-z/windows", "needle-cache")])
    admin.sign_in(*ADMIN)
    admin.set_page_size(10)
    assert ("proj-z/windows", "needle-cache") not in admin.table_rows()

    admin.filter(cache="NEEDLE")
    assert admin.table_rows() == [("proj-z/windows", "needle-cache")]
    assert admin.status() == "1 of 31 open purge requests match (page 1 of 1)."

    admin.filter(pool="proj-1/")
    expected = [p for p in listed(all_requests(admin.server)) if p[0] == "proj-1/linux"]
    assert len(expected) == 10 and admin.table_rows() == expected

    admin.filter(pool="proj-", cache="2")
    matches = [p for p in listed(all_requests(admin.server)) if "2" in p[1]]
    assert len(matches) == 12 and admin.table_rows() == matches[:10]
    assert admin.status() == "12 of 31 open purge requests match (page 1 of 2)."
    admin.next_page()
    assert admin.table_rows() == matches[10:]

    admin.page.get_by_role("button", name="Clear").click()
    admin.wait_until_ready()
    assert admin.status() == "Page 1: requests 1–10, more on the next page."


def test_filter_reads_every_page_of_a_large_listing(open_admin: OpenAdmin) -> None:
    """Past 1000 requests the search follows the continuation token to the end."""
    admin = open_admin()
    seed(admin.server, [("bulk/pool", f"cache-{i:04d}") for i in range(1001)])
    seed(admin.server, [("zzz/last", "needle")])
    admin.sign_in(*ADMIN)
    admin.filter(cache="needle")
    assert admin.table_rows() == [("zzz/last", "needle")]
    assert admin.status() == "1 of 1,002 open purge requests match (page 1 of 1)."
    assert sum("limit=1000" in r for r in admin.api_requests) == 2


def test_filter_with_no_match_says_so(open_admin: OpenAdmin) -> None:
    """An empty result is a sentence, not an empty table."""
    admin = open_admin()
    seed(admin.server, [("proj-a/linux", "checkouts")])
    admin.sign_in(*ADMIN)
    admin.filter(pool="nothing-like-this")
    assert admin.table_rows() == []
    assert admin.page.locator("#requests-table").is_hidden()
    assert admin.status() == "None of the 1 open purge requests match."


@pytest.mark.parametrize("size", [10, 25])
def test_created_purge_appears_while_filtered(open_admin: OpenAdmin, size: int) -> None:
    """With a filter applied, a new matching purge shows up at once (the search is re-run)."""
    admin = open_admin()
    admin.sign_in(*ADMIN)
    admin.set_page_size(size)
    admin.filter(pool="proj-f")
    admin.purge("proj-f/linux", "fresh")
    assert admin.table_rows() == [("proj-f/linux", "fresh")]


def test_purge_again_fills_the_form_from_a_row(open_admin: OpenAdmin) -> None:
    """ "Purge again…" prepares the form for that pool and cache but sends nothing."""
    admin = open_admin()
    seed(admin.server, [("proj-a/linux", "checkouts")])
    admin.sign_in(*ADMIN)
    before = len(admin.api_requests)
    admin.page.get_by_role("button", name="Purge again: checkouts on proj-a/linux").click()
    create = admin.section("Request a purge")
    assert create.get_by_label("Worker pool").input_value() == "proj-a/linux"
    assert create.locator("#pinned-cache-name").inner_text() == "checkouts"
    assert len(admin.api_requests) == before


ODD_NAMES = [
    ("line1\nline2", "line1\\nline2"),
    ("  padded  ", "␣␣padded␣␣"),
    ("", "(empty name)"),
    ("tab\there", "tab\\there"),
    ("zero\u200bwidth", "zero\\u{200B}width"),
    ("abc\u202edcba", "abc\\u{202E}dcba"),
]


@sizes
def test_purge_again_sends_exactly_the_rows_name(open_admin: OpenAdmin, width: int) -> None:
    """Names with newlines, edge spaces, tabs, zero-width or bidi characters, or none at all,
    are shown with those characters marked and re-purged exactly as listed."""
    admin = open_admin(width=width)
    seed(admin.server, [("proj-o/linux", name) for name, _ in ODD_NAMES])
    admin.sign_in(*ADMIN)
    rows = admin.page.locator("#requests-rows tr")
    shown = sorted(rows.nth(i).locator("td").nth(1).inner_text() for i in range(rows.count()))
    assert shown == sorted(visible for _, visible in ODD_NAMES)
    assert admin.page.locator("#requests-rows .escape[title='U+202E']").count() == 1
    posted: list[str] = []
    admin.page.on("request", lambda r: posted.append(r.post_data) if r.method == "POST" else None)
    for _, visible in ODD_NAMES:
        admin.page.get_by_role(
            "button", name=f"Purge again: {visible} on proj-o/linux", exact=True
        ).click()
        admin.page.get_by_role("button", name="Review purge…").click()
        assert admin.page.locator("#confirm-names").inner_text() == visible
        admin.page.get_by_role("button", name="Purge 1 cache").click()
        admin.page.locator("#purge-result h3").wait_for()
        admin.wait_until_ready()
    assert [json.loads(body)["cacheName"] for body in posted] == [name for name, _ in ODD_NAMES]
    assert sorted(r["cacheName"] for r in all_requests(admin.server)) == sorted(
        name for name, _ in ODD_NAMES
    )


@sizes
def test_the_pager_is_above_and_below_the_table(open_admin: OpenAdmin, width: int) -> None:
    """The pager above the table pages as the one below does, and both show the same state."""
    admin = open_admin(width=width)
    seed(admin.server, [(f"proj-t/linux-{i}", "c") for i in range(12)])
    expected = listed(all_requests(admin.server))
    admin.sign_in(*ADMIN)
    admin.set_page_size(10)
    above = admin.page.get_by_role("navigation", name="Pages of purge requests, above the table")
    table_top = admin.page.locator("#requests-table").bounding_box()["y"]
    assert above.bounding_box()["y"] < table_top
    above.get_by_role("button", name="Next page").click()
    admin.wait_until_ready()
    assert admin.table_rows() == expected[10:]
    states = admin.page.evaluate(
        """() => [...document.querySelectorAll('#requests .pager button')]
                 .map((button) => `${button.textContent} ${button.disabled}`)"""
    )
    assert states == ["Previous page false", "Next page true"] * 2


def test_newest_first_sorts_every_request_in_the_browser(open_admin: OpenAdmin) -> None:
    """ "Newest first" reads all requests and orders them by `before`, newest on top."""
    admin = open_admin()
    for name in ("first", "second", "third"):
        seed(admin.server, [(f"proj-{name}/linux", name)])
        time.sleep(0.005)
    admin.sign_in(*ADMIN)
    admin.page.get_by_label("Order").select_option(label="Newest first")
    admin.page.get_by_role("button", name="Filter", exact=True).click()
    admin.wait_until_ready()
    assert [name for _, name in admin.table_rows()] == ["third", "second", "first"]
    assert admin.status() == "3 of 3 open purge requests shown (page 1 of 1)."


def test_a_search_says_when_it_stopped_at_its_cap(
    open_admin: OpenAdmin, server_factory: Callable[..., LiveServer], tmp_path: Path
) -> None:
    """Past 50,000 requests a search stops reading and says so; it never claims "none match"
    of requests it did not read."""
    data_dir = tmp_path / "big"
    seed_database(data_dir, [(f"pool-{i // 100:04d}/w", f"c-{i % 100:02d}") for i in range(50_000)])
    seed_database(data_dir, [("zzz/last", "needle")])
    admin = open_admin(server=server_factory(data_dir=data_dir))
    admin.sign_in(*ADMIN)
    admin.filter(cache="needle")
    assert admin.table_rows() == []
    assert admin.status() == (
        "None of the first 50,000 open purge requests match. There are more: a search reads at "
        "most 50,000 open purge requests, so it did not see them all."
    )
    assert sum("limit=1000" in r for r in admin.api_requests) == 50

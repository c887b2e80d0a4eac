"""Long names: a 4,096-character cache name is cut short with "Show all" and "Copy" and leaves
the pool column its room; the longest pool id fits a phone's screen."""

from __future__ import annotations

from collections.abc import Callable

from web.admin_page import AdminPage, seed, sizes

from conftest import ADMIN

OpenAdmin = Callable[..., AdminPage]
LONG_NAME = "x" * 4096
LONG_POOL = "p" * 38 + "/" + "w" * 38


@sizes
def test_a_long_cache_name_is_cut_short_with_show_all_and_copy(
    open_admin: OpenAdmin, width: int
) -> None:
    """The pool column keeps its width; "Show all" shows every character; "Copy" copies the
    exact name (pasted back here to check)."""
    admin = open_admin(width=width)
    seed(admin.server, [("proj-a/linux", LONG_NAME), ("proj-b/windows", "short")])
    admin.page.context.grant_permissions(["clipboard-write"])
    admin.sign_in(*ADMIN)
    first = admin.page.locator("#requests-rows tr").first
    pool_cell, name_cell = first.locator("td").nth(0), first.locator("td").nth(1)
    assert pool_cell.locator("button").bounding_box()["height"] < 30, "the pool id on one line"
    assert len(name_cell.locator("code").inner_text()) < 100
    show_all = name_cell.get_by_role("button", name="Show all 4,096 characters")
    show_all.click()
    assert name_cell.locator("code").inner_text() == LONG_NAME
    assert name_cell.get_by_role("button", name="Show less").get_attribute("aria-expanded") == (
        "true"
    )
    name_cell.get_by_role("button", name="Copy").click()
    name_cell.get_by_role("button", name="Copied").wait_for()
    names = admin.section("Request a purge").get_by_label("Cache names")
    names.focus()
    admin.page.keyboard.press("Control+V")
    assert names.input_value() == LONG_NAME


def test_the_pool_view_of_the_longest_pool_fits_a_phone(open_admin: OpenAdmin) -> None:
    """At 360 px a 38/38-character pool with a 4,096-character cache scrolls nowhere sideways,
    the exact JSON reply included."""
    admin = open_admin(width=360, height=800)
    seed(admin.server, [(LONG_POOL, LONG_NAME)])
    admin.sign_in(*ADMIN)
    admin.page.get_by_role("button", name=f"{LONG_POOL}: show what its workers receive").click()
    view = admin.section("What the workers of a pool receive")
    view.get_by_role("heading", name=f"Workers of {LONG_POOL} receive 1").wait_for()
    view.get_by_text("Exact reply (JSON), as a worker receives it").click()
    admin.review_purge(LONG_POOL, "checkouts")
    assert admin.page.evaluate("() => document.documentElement.scrollWidth") <= 360

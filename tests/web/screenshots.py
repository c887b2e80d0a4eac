"""The admin page's pictures in docs/img/, made by scripts/page-screenshots (never by CI: the
file name is not a test module's, so the test run does not collect it)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from web.admin_page import AdminPage, seed

from conftest import ADMIN, LIMITED, LiveServer

OpenAdmin = Callable[..., AdminPage]
ROWS = [
    ("proj-a/linux", "level-3-checkouts-v3"),
    ("proj-a/linux", "  padded  "),
    ("proj-b/windows-2022", "line1\nline2"),
    ("proj-b/windows-2022", "sccache"),
    ("proj-c/macos", "a" * 300),
]


@pytest.mark.parametrize(
    ("name", "width", "scheme"),
    [
        ("admin-desktop.png", 1280, "light"),
        ("admin-desktop-dark.png", 1280, "dark"),
        ("admin-phone.png", 360, "light"),
    ],
)
def test_picture(
    open_admin: OpenAdmin, page_server: LiveServer, name: str, width: int, scheme: str
) -> None:
    """The page signed in, with odd and long names, a refused bulk purge and a pool shown."""
    admin = open_admin(width=width, height=900, server=page_server)
    admin.page.emulate_media(color_scheme=scheme)
    if name == "admin-desktop.png":
        seed(page_server, ROWS)
    admin.sign_in(*LIMITED)
    admin.purge("proj-a/linux", "cache-1", *(f"other-{i}" for i in range(8)))
    admin.sign_out()
    admin.sign_in(*ADMIN)
    admin.page.get_by_role(
        "button", name="proj-a/linux: show what its workers receive"
    ).first.click()
    admin.section("What the workers of a pool receive").locator("h3").wait_for()
    admin.screenshot(name)

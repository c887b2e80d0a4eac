"""The admin page's pictures in docs/img/, made by scripts/page-screenshots (never by CI: the
file name is not a test module's, so the test run does not collect it)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from web.admin_page import AdminPage, admin_api, report, seed

from conftest import ADMIN, LIMITED, LiveServer

OpenAdmin = Callable[..., AdminPage]
ROWS = [
    ("proj-a/linux", "level-3-checkouts-v3"),
    ("proj-a/linux", "  padded  "),
    ("proj-b/windows-2022", "line1\nline2"),
    ("proj-b/windows-2022", "sccache"),
    ("proj-c/macos", "a" * 300),
]
HISTORY = [
    ("sccache", "disk full on the 2.3 image", "https://bugs.example.com/1234"),
    ("level-3-checkouts-v3", "corrupt after\nthe upgrade\u200b", "https://ci.example.com/run/7"),
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


@pytest.mark.parametrize(
    ("name", "width"), [("history-desktop.png", 1280), ("history-phone.png", 360)]
)
def test_history_picture(
    open_admin: OpenAdmin, page_server: LiveServer, name: str, width: int
) -> None:
    """The purge history, signed in: reasons (one with invisible characters) and links."""
    with admin_api(page_server) as api:
        for cache_name, reason, link in HISTORY:
            body = {"cacheName": cache_name, "reason": reason, "link": link}
            assert api.post("/ext/purge/proj-a%2Flinux", json=body).status_code == 200
    admin = open_admin(width=width, height=900, server=page_server, path="/")
    admin.sign_in(*ADMIN)
    admin.screenshot(name)


@pytest.mark.parametrize(("device", "width"), [("desktop", 1280), ("phone", 360)])
def test_operator_views_pictures(
    open_admin: OpenAdmin, page_server: LiveServer, device: str, width: int
) -> None:
    """Convergence of a purge (one worker applied, one not seen since, a client id fetched),
    the caches held on the pool by size, and a purge by pattern under review (a stand-in
    answer): one picture of each section."""
    from web.test_operator_views import (
        MATCHED,
        FakeSelectorPurge,
        converging_pool,
        matched,
        review,
    )

    pool = f"proj-{device}/linux"
    converging_pool(page_server, pool, "level-3-checkouts-v3")
    held = [
        {
            "cacheName": "level-3-checkouts-v3",
            "instances": 1,
            "bytes": 7 * 1024**3,
            "lastUsed": "2026-12-05T20:00:00.000Z",
        },
        {"cacheName": "sccache\u200b", "instances": 2, "bytes": 2 * 1024**3},
        {"cacheName": "node-modules", "instances": 1, "bytes": 900 * 1024**2},
    ]
    report(page_server, pool, "w-new", inventory=held)
    cache = "level-3-checkouts-v3"
    path = f"/?converge={pool}&convergeCache={cache}&caches={pool}&cachesSort=size-desc"
    admin = open_admin(width=width, height=900, server=page_server, path=path)
    FakeSelectorPurge(admin.page, [(200, matched(MATCHED, "sha256:" + "ab" * 32))])
    admin.sign_in(*ADMIN)
    review(admin)
    for section, name in (
        ("Did the workers apply it?", "convergence"),
        ("Caches held on a pool", "caches"),
        ("Purge by pattern", "selector-review"),
    ):
        admin.section_screenshot(section, f"{name}-{device}.png")

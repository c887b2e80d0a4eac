"""Keyboard and assistive technology: unique names for fields, and a focus ring that stands
out (3:1) from what surrounds it, in light and dark colour schemes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from web.admin_page import AdminPage, report, seed, sizes

from conftest import ADMIN, LIMITED, LiveServer

OpenAdmin = Callable[..., AdminPage]

COLOURS = """
  const rgb = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const linear = (c) => (c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  };
  const contrast = (a, b) => {
    const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return Math.round((light + 0.05) / (dark + 0.05) * 100) / 100;
  };
  const behind = (node, self) => {
    for (let at = self ? node : node.parentElement; at; at = at.parentElement) {
      const colour = rgb(getComputedStyle(at).backgroundColor);
      if (colour.length === 3 || colour[3] > 0) return colour.slice(0, 3);
    }
    return rgb(getComputedStyle(document.documentElement).backgroundColor).slice(0, 3);
  };
"""
# For each focusable control: its outline colour against the first opaque background behind it.
FOCUS_CONTRAST = (
    """() => {"""
    + COLOURS
    + """
  const focusable = [...document.querySelectorAll("a[href], button, input, select, textarea")]
    .filter((node) => !node.disabled && node.offsetParent !== null);
  return focusable.map((node) => {
    node.focus({ focusVisible: true });
    const style = getComputedStyle(node);
    const ring = contrast(rgb(style.outlineColor).slice(0, 3), behind(node, false));
    return { what: node.id || node.textContent.trim() || node.outerHTML.slice(0, 60),
      ring, width: parseFloat(style.outlineWidth) };
  });
}"""
)


# Every visible element that holds text directly: its colour against its background.
TEXT_CONTRAST = (
    """() => {"""
    + COLOURS
    + """
  return [...document.querySelectorAll("body *")]
    .filter((node) => node.offsetParent !== null && getComputedStyle(node).opacity === "1"
      && [...node.childNodes].some((child) => child.nodeType === 3 && child.data.trim()))
    .map((node) => ({ what: node.textContent.trim().slice(0, 40),
      text: contrast(rgb(getComputedStyle(node).color).slice(0, 3), behind(node, true)) }));
}"""
)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@sizes
def test_text_contrast_in_light_and_dark(open_admin: OpenAdmin, scheme: str, width: int) -> None:
    """Text, links, buttons, errors and outcomes are at least 4.5:1 in both colour schemes; the
    dark scheme really is dark."""
    admin = open_admin(width=width)
    admin.page.emulate_media(color_scheme=scheme)
    seed(admin.server, [("proj-c/linux", "odd\u200bname")])
    admin.sign_in(*LIMITED)
    admin.purge("proj-a/linux", "cache-1", "cache-2")
    background = admin.page.evaluate(
        "() => getComputedStyle(document.documentElement).backgroundColor"
    )
    assert (background == "rgb(15, 20, 27)") == (scheme == "dark"), background
    texts: list[dict[str, Any]] = admin.page.evaluate(TEXT_CONTRAST)
    assert len(texts) > 40
    assert [text for text in texts if text["text"] < 4.5] == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
@sizes
def test_focus_ring_stands_out_three_to_one(
    open_admin: OpenAdmin, page_server: LiveServer, scheme: str, width: int
) -> None:
    """Every control's 3 px focus ring has at least 3:1 contrast with the colour around it."""
    admin = open_admin(width=width, server=page_server)
    admin.page.emulate_media(color_scheme=scheme)
    admin.page.keyboard.press("Tab")  # keyboard modality: :focus-visible applies to all
    rings: list[dict[str, Any]] = admin.page.evaluate(FOCUS_CONTRAST)
    assert len(rings) > 10
    weak = [ring for ring in rings if ring["ring"] < 3 or ring["width"] < 3]
    assert weak == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_focus_ring_stands_out_on_the_controls_the_page_adds(
    open_admin: OpenAdmin, page_server: LiveServer, scheme: str
) -> None:
    """The same 3 px, 3:1 ring on what is built later: the history rows' buttons, a long name's
    "Show all" and "Copy", the caches' sort headers and the confirmation's buttons."""
    long_name = "focus-" + "x" * 54
    seed(page_server, [("focus-a/linux", long_name)])
    report(
        page_server,
        "focus-a/linux",
        "w1",
        inventory=[{"cacheName": "c", "instances": 1, "bytes": 1}],
    )
    admin = open_admin(server=page_server, path="/?caches=focus-a%2Flinux")
    admin.page.emulate_media(color_scheme=scheme)
    admin.sign_in(*ADMIN)
    admin.review_purge("focus-a/linux", "checkouts")
    admin.page.locator("#confirm-purge:not([aria-disabled])").wait_for()
    admin.page.keyboard.press("Tab")  # keyboard modality: :focus-visible applies to all
    rings: list[dict[str, Any]] = admin.page.evaluate(FOCUS_CONTRAST)
    checked = {ring["what"] for ring in rings}
    added = {
        "confirm-purge",
        "confirm-back",
        "Select",
        "Convergence",
        "Copy",
        "Show all 60 characters",
        "Total size",
    }
    assert added <= checked, added - checked
    weak = [ring for ring in rings if ring["ring"] < 3 or ring["width"] < 3]
    assert weak == []


@sizes
def test_every_field_has_its_own_name(
    open_admin: OpenAdmin, page_server: LiveServer, width: int
) -> None:
    """No two fields share an accessible name (the purge form's pool and the pool view's)."""
    admin = open_admin(width=width, server=page_server)
    admin.sign_in(*ADMIN)
    names = admin.page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
                 .filter((field) => field.offsetParent !== null)
                 .map((field) => field.getAttribute('aria-label')
                      || field.labels[0].textContent.replace(/\\s+/g, ' ').trim())"""
    )
    assert len(names) == len(set(names)), names


# The accessible name of each visible button outside the pagers (whose "Next page" above and
# below the table are the same button twice, in navigation regions of their own).
BUTTON_NAMES = """() => [...document.querySelectorAll('button')]
  .filter((button) => button.offsetParent !== null && !button.closest('nav.pager'))
  .map((button) => (button.getAttribute('aria-label') || button.textContent)
    .replace(/\\s+/g, ' ').trim())"""


@sizes
def test_every_button_has_its_own_name(open_admin: OpenAdmin, width: int) -> None:
    """Buttons repeated per row say which row: "Copy" and "Show all" of two long names that
    share their start, "Select" and "Convergence" of two purges of one cache; in both views.
    (Buttons that do the same thing may share a name: a pool's "show what its workers
    receive" on each of its rows; so each row here has a pool of its own.)"""
    admin = open_admin(width=width, path="/")
    prefix = "unique-" + "y" * 50
    seed(admin.server, [("uniq-a/linux", f"{prefix}-1"), ("uniq-b/linux", f"{prefix}-2")])
    seed(admin.server, [("uniq-c/linux", "again"), ("uniq-c/linux", "again")])
    admin.sign_in(*ADMIN)
    for view in ("history", "requests"):
        if view == "requests":
            admin.page.get_by_role("button", name="Open purge requests", exact=True).click()
            admin.wait_until_ready()
        names: list[str] = admin.page.evaluate(BUTTON_NAMES)
        assert len(names) > 10, view
        assert sorted({name for name in names if names.count(name) > 1}) == [], view

"""The admin page end to end in headless Chromium: sign in, purge, see, forbidden, sign out."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from web.admin_page import AdminPage, all_requests, seed, sizes

from conftest import ADMIN, LIMITED, LiveServer

OpenAdmin = Callable[..., AdminPage]


def temporary_credentials(
    client_id: str, access_token: str, scopes: list[str]
) -> tuple[str, str, str]:
    """Unnamed temporary credentials valid for an hour, minted as auth.md §2 describes."""
    now_ms = int(time.time() * 1000)
    start, expiry = now_ms - 60_000, now_ms + 3_600_000
    seed_text = base64.urlsafe_b64encode(os.urandom(33)).decode()
    signed = "\n".join(
        ["version:1", f"seed:{seed_text}", f"start:{start}", f"expiry:{expiry}", "scopes:", *scopes]
    )
    key = access_token.encode()
    signature = base64.b64encode(hmac.new(key, signed.encode(), hashlib.sha256).digest()).decode()
    derived = hmac.new(key, seed_text.encode(), hashlib.sha256).digest()
    certificate = {
        "version": 1,
        "scopes": scopes,
        "start": start,
        "expiry": expiry,
        "seed": seed_text,
        "signature": signature,
    }
    token = base64.urlsafe_b64encode(derived).decode().rstrip("=")
    return client_id, token, json.dumps(certificate)


def test_sign_in_purge_and_see_it_in_the_table_without_a_reload(open_admin: OpenAdmin) -> None:
    """Signed in as admin, a purge of two caches is confirmed, reported and listed in place."""
    admin = open_admin()
    admin.page.evaluate("() => { window.sameDocument = true; }")
    admin.sign_in(*ADMIN)
    assert admin.page.locator("#who").inner_text() == "Signed in as admin"

    admin.review_purge("proj-a/linux", "checkouts", "sccache")
    confirm = admin.page.get_by_role("group", name="Confirm the purge")
    assert "Ask every worker of proj-a/linux to delete these 2 caches?" in confirm.inner_text()
    assert not [r for r in admin.api_requests if r.startswith("POST")], "sent before confirming"
    admin.page.get_by_role("button", name="Purge 2 caches").click()
    admin.page.locator("#purge-result h3").wait_for()
    admin.wait_until_ready()

    assert admin.page.locator("#purge-result h3").inner_text() == (
        "Purge requested for 2 caches on proj-a/linux."
    )
    assert admin.table_rows() == [("proj-a/linux", "checkouts"), ("proj-a/linux", "sccache")]
    stored = all_requests(admin.server)
    times = admin.page.locator("#requests-rows time")
    assert [times.nth(i).get_attribute("datetime") for i in range(2)] == [
        r["before"] for r in stored
    ]
    utc = admin.page.locator("#requests-rows .utc")
    assert [utc.nth(i).inner_text() for i in range(2)] == [r["before"] for r in stored], (
        "the UTC value is shown, not only on hover"
    )
    assert admin.page.locator("#requests-rows .relative").first.inner_text() in {
        "just now",
        "5 s ago",
        "6 s ago",
    }
    assert admin.page.evaluate("() => window.sameDocument") is True
    shot = admin.screenshot("admin.png")
    assert shot.stat().st_size > 10_000


BAD_POOLS = [
    ("", "Enter a worker pool ID"),
    ("proj-a", 'exactly one "/"'),
    ("proj-a/linux/x", 'exactly one "/"'),
    ("/linux", "The provisionerId part is empty."),
    ("proj-a/", "The workerType part is empty."),
    ("proj a/linux", "contains a space"),
    ("proj-a/linux.big", 'contains "."'),
    ("proj-a/" + "w" * 39, "has 39 characters; at most 38"),
]


def test_pool_is_checked_like_the_api_and_the_rule_explained(
    open_admin: OpenAdmin, page_server: LiveServer
) -> None:
    """A pool id the API would refuse is explained at the field, and nothing is sent."""
    admin = open_admin(server=page_server)
    field = admin.section("Request a purge").get_by_label("Worker pool")
    for pool, problem in BAD_POOLS:
        admin.review_purge(pool, "checkouts")
        assert problem in admin.page.locator("#purge-pool-problem").inner_text(), pool
        assert field.get_attribute("aria-invalid") == "true"
        assert admin.page.evaluate("() => document.activeElement.id") == "purge-pool"
    admin.review_purge("a_-Z9/" + "w" * 38, "checkouts")
    assert admin.page.locator("#purge-pool-problem").is_hidden()
    assert field.get_attribute("aria-invalid") is None
    assert not [r for r in admin.api_requests if r.startswith("POST")]


def test_anonymous_visitor_is_told_what_is_allowed_and_what_is_missing(
    open_admin: OpenAdmin,
) -> None:
    """Without credentials: listing is refused with the missing scope; a public pool is readable."""
    admin = open_admin()
    access = admin.section("Credentials")
    assert "Not allowed List all open purge requests" in access.inner_text()
    error = admin.page.locator("#requests-error")
    assert "Not allowed without credentials. (403 InsufficientScopes)" in error.inner_text()
    assert "You are not signed in" in error.inner_text()
    assert error.locator("pre").inner_text() == "purge-cache:all-purge-requests"

    seed(admin.server, [("public/linux", "checkouts")])
    pool_view = admin.section("What the workers of a pool receive")
    pool_view.get_by_label("Worker pool").fill("public/linux")
    pool_view.get_by_role("button", name="Show").click()
    pool_view.get_by_role(
        "heading", name="Workers of public/linux receive 1 purge request"
    ).wait_for()
    pool_view.get_by_label("Worker pool").fill("proj-a/linux")
    pool_view.get_by_role("button", name="Show").click()
    assert (
        "purge-cache:purge-requests::proj-a/linux" in pool_view.locator(".error pre").inner_text()
    )

    admin.review_purge("proj-a/linux", "checkouts")
    assert admin.page.locator("#confirm-anonymous").is_visible()
    admin.page.get_by_role("button", name="Purge 1 cache").click()
    outcome = admin.page.locator("#purge-result")
    outcome.locator(".error").wait_for()
    assert "Nothing was purged on proj-a/linux: the service refused." in outcome.inner_text()
    assert outcome.locator("pre").inner_text() == "purge-cache:proj-a/linux:checkouts"


def test_forbidden_purge_shows_the_taskcluster_message(open_admin: OpenAdmin) -> None:
    """A client lacking a scope sees which one, per cache; the allowed cache is still purged."""
    admin = open_admin()
    admin.sign_in(*LIMITED)
    assert (
        "Client ID limited does not have sufficient scopes"
        in admin.page.locator("#requests-error").inner_text()
    )
    heading = admin.purge("proj-a/linux", "cache-1", "cache-2")
    assert heading == "Purge requested for 1 of 2 caches on proj-a/linux; 1 refused."
    groups = admin.page.locator("#purge-result .outcome-group")
    assert groups.nth(0).inner_text().split() == ["Requested", "1", "cache", "cache-1"]
    failed = groups.nth(1)
    assert failed.inner_text().split()[:4] == ["Refused", "1", "cache", "cache-2"]
    assert "Not allowed: these credentials lack a scope this needs." in failed.inner_text()
    assert "(403 InsufficientScopes)" in failed.inner_text()
    assert (
        "Client ID limited does not have sufficient scopes and is missing the following scopes:"
        in failed.inner_text()
    )
    assert failed.locator("pre").first.inner_text() == "purge-cache:proj-a/linux:cache-2"
    assert "* errorCode:" not in failed.inner_text(), "the footer is noise for a person"
    assert [(r["workerType"], r["cacheName"]) for r in all_requests(admin.server)] == [
        ("linux", "cache-1")
    ]


def test_wrong_access_token_is_refused_and_not_kept(open_admin: OpenAdmin) -> None:
    """A 401 at sign-in shows the service's reason and stores nothing."""
    admin = open_admin()
    admin.fill_credentials("admin", "not-the-token")
    error = admin.page.locator("#sign-in-error .error")
    error.wait_for()
    assert "(401 AuthenticationFailed)" in error.inner_text()
    assert "Unauthorized: Bad mac" in error.inner_text()
    assert admin.stored_credentials() is None
    assert admin.page.locator("#who").inner_text() == "Not signed in"


def test_sign_out_forgets_the_credentials(open_admin: OpenAdmin) -> None:
    """Credentials survive a reload of the tab (session storage) until sign-out removes them."""
    admin = open_admin()
    seed(admin.server, [("proj-a/linux", "checkouts")])
    admin.sign_in(*ADMIN)
    assert json.loads(admin.stored_credentials())["clientId"] == "admin"
    admin.reload()
    assert admin.table_rows() == [("proj-a/linux", "checkouts")]

    admin.sign_out()
    assert admin.stored_credentials() is None
    assert admin.page.evaluate("() => sessionStorage.length") == 0
    assert admin.page.get_by_label("Access token").input_value() == ""
    assert admin.table_rows() == []
    assert "purge-cache:all-purge-requests" in admin.page.locator("#requests-error").inner_text()
    admin.reload()
    assert admin.page.locator("#who").inner_text() == "Not signed in"


def test_temporary_credentials_sign_requests_with_their_certificate(open_admin: OpenAdmin) -> None:
    """With a certificate the page sends it in `ext`; only the certificate's scopes apply."""
    admin = open_admin()
    scopes = ["purge-cache:all-purge-requests", "purge-cache:proj-t/linux:*"]
    admin.sign_in(*temporary_credentials(*ADMIN, scopes))
    assert "temporary credentials, valid until" in admin.page.locator("#signed-in").inner_text()
    assert (
        admin.purge("proj-t/linux", "checkouts") == "Purge requested for 1 cache on proj-t/linux."
    )
    assert admin.table_rows() == [("proj-t/linux", "checkouts")]
    refused = admin.purge("proj-a/linux", "checkouts")
    assert refused == "Nothing was purged on proj-a/linux: the service refused."
    assert (
        "purge-cache:proj-a/linux:checkouts"
        in admin.page.locator("#purge-result pre").first.inner_text()
    )


def test_keyboard_alone_signs_in_and_purges(open_admin: OpenAdmin) -> None:
    """Tab, typing and Enter are enough; focus lands on each next step and on the outcome."""
    admin = open_admin()
    keyboard = admin.page.keyboard
    focused = "() => document.activeElement.id"
    for _ in range(6):
        keyboard.press("Tab")
        if admin.page.evaluate(focused) == "client-id":
            break
    keyboard.type(ADMIN[0])
    keyboard.press("Tab")
    keyboard.type(ADMIN[1])
    keyboard.press("Enter")
    admin.page.get_by_role("button", name="Sign out").wait_for()
    assert admin.page.evaluate(focused) == "signed-in-as"
    keyboard.press("Tab")
    keyboard.press("Tab")
    assert admin.page.evaluate(focused) == "purge-pool"
    keyboard.type("proj-k/linux")
    keyboard.press("Tab")
    keyboard.type("checkouts")
    keyboard.press("Tab")
    keyboard.press("Enter")
    assert admin.page.evaluate(focused) == "confirm-title"
    keyboard.press("Tab")
    assert admin.page.evaluate(focused) == "confirm-purge"
    admin.page.locator("#confirm-purge:not([aria-disabled])").wait_for()
    keyboard.press("Enter")
    admin.page.locator("#purge-result h3:focus").wait_for()
    assert all_requests(admin.server)[0]["cacheName"] == "checkouts"


@sizes
def test_enter_twice_in_the_pool_field_does_not_confirm(
    open_admin: OpenAdmin, page_server: LiveServer, width: int
) -> None:
    """Enter reviews; a second Enter (or a key held down) leaves the confirmation waiting."""
    admin = open_admin(width=width, server=page_server)
    admin.sign_in(*ADMIN)
    create = admin.section("Request a purge")
    create.get_by_label("Cache names").fill("checkouts")
    create.get_by_label("Worker pool").fill("proj-e/linux")
    create.get_by_label("Worker pool").press("Enter")
    admin.page.keyboard.press("Enter")
    admin.page.keyboard.down("Enter")
    admin.page.keyboard.up("Enter")
    admin.page.wait_for_timeout(200)
    assert admin.page.get_by_role("group", name="Confirm the purge").is_visible()
    assert not [r for r in admin.api_requests if r.startswith("POST")]


@sizes
@pytest.mark.parametrize("count", [1, 3])
def test_a_double_click_on_review_does_not_confirm(
    open_admin: OpenAdmin, page_server: LiveServer, width: int, count: int
) -> None:
    """The confirmation appears under the pointer: a double-click on "Review purge…" leaves it
    waiting (nothing sent); a deliberate click afterwards purges."""
    admin = open_admin(server=page_server, width=width)
    admin.sign_in(*ADMIN)
    create = admin.section("Request a purge")
    create.get_by_label("Worker pool").fill("proj-d/linux")
    create.get_by_label("Cache names").fill("\n".join(f"double-{i}" for i in range(count)))
    create.get_by_role("button", name="Review purge…").dblclick()
    admin.page.wait_for_timeout(300)
    assert admin.page.get_by_role("group", name="Confirm the purge").is_visible()
    assert admin.posts() == []
    assert admin.purge_confirmed(count).startswith("Purge requested for")
    assert len(admin.posts()) == count


def test_every_control_has_a_name(open_admin: OpenAdmin, page_server: LiveServer) -> None:
    """Each field has a <label>, each button a name; the page declares its language."""
    admin = open_admin(server=page_server)
    unlabeled = admin.page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
                 .filter((field) => field.labels.length === 0).map((field) => field.id)"""
    )
    nameless = admin.page.evaluate(
        """() => [...document.querySelectorAll('button')]
                 .filter((b) => !(b.getAttribute('aria-label') || b.textContent.trim()))
                 .map((b) => b.outerHTML)"""
    )
    assert (unlabeled, nameless) == ([], [])
    assert admin.page.evaluate("() => document.documentElement.lang") == "en"


def test_narrow_screen_needs_no_sideways_scrolling(open_admin: OpenAdmin) -> None:
    """At a phone's width (360 px) the page and its table fit; rows become labelled cards."""
    admin = open_admin(width=360, height=800)
    seed(
        admin.server, [("proj-a/linux", "level-3-checkouts-v3"), ("proj-b/windows-2022", "sccache")]
    )
    admin.sign_in(*ADMIN)
    assert admin.page.evaluate("() => document.documentElement.scrollWidth") <= 360
    label = admin.page.evaluate(
        "() => getComputedStyle(document.querySelector('#requests-rows td'), '::before').content"
    )
    assert label == '"Worker pool"'
    admin.screenshot("admin-narrow.png")


def test_plain_http_to_a_remote_host_explains_why_sign_in_is_off(
    open_admin: OpenAdmin, page_server: LiveServer
) -> None:
    """WebCrypto exists only on secure pages: over http:// to another host the page says so."""
    admin = open_admin(server=page_server)
    insecure_origin = "http://purgecache.test"

    def relay(route: Any) -> None:
        url = route.request.url.replace(insecure_origin, page_server.root_url)
        route.fulfill(response=route.fetch(url=url))

    admin.page.route(f"{insecure_origin}/**", relay)
    admin.page.goto(f"{insecure_origin}/")
    admin.wait_until_ready()
    assert admin.page.evaluate("() => window.isSecureContext") is False
    assert "needs this page to be opened over HTTPS" in admin.page.locator("#insecure").inner_text()
    assert admin.page.get_by_role("button", name="Sign in").is_disabled()
    assert "Not allowed List all open purge requests" in admin.section("Credentials").inner_text()
    # Browsers apply Cross-Origin-Opener-Policy only on secure origins, and say so here.
    ignored = "The Cross-Origin-Opener-Policy header has been ignored"
    admin.problems[:] = [problem for problem in admin.problems if ignored not in problem]


def test_access_token_field_is_masked_but_not_offered_to_the_password_manager(
    open_admin: OpenAdmin, page_server: LiveServer
) -> None:
    """No password field for the browser to save: the token is masked by the style sheet."""
    admin = open_admin(server=page_server)
    token = admin.page.get_by_label("Access token")
    assert admin.page.locator("input[type=password]").count() == 0
    assert token.get_attribute("autocomplete") == "off"
    assert admin.page.get_by_label("Client ID").get_attribute("autocomplete") == "off"
    masked = token.evaluate("(field) => getComputedStyle(field).webkitTextSecurity")
    assert masked == "disc"


@sizes
def test_a_tab_opened_from_the_page_is_signed_out_and_told_nothing(
    open_admin: OpenAdmin, page_server: LiveServer, width: int
) -> None:
    """Links opening a new tab are noopener noreferrer: that tab starts without credentials
    and without the page's address.

    What can fail in Chromium 156: the rel assertion (the links' markup), and the opened
    tab's empty `document.referrer` once both rel=noreferrer and the page's Referrer-Policy
    are gone. Chromium treats target=_blank as noopener by itself, so the opened tab's empty
    sessionStorage and "Not signed in" hold even without rel: they pin what docs/web.md
    promises, not the markup."""
    admin = open_admin(server=page_server, width=width)
    admin.sign_in(*ADMIN)
    new_tab_links = admin.page.evaluate(
        """() => [...document.querySelectorAll('a[target=_blank]')]
                 .map((link) => link.relList.contains('noopener')
                                && link.relList.contains('noreferrer'))"""
    )
    assert new_tab_links and all(new_tab_links)
    with admin.page.context.expect_page() as opened:
        admin.page.get_by_role("link", name="reference (api.json)").click()
    tab = opened.value
    tab.wait_for_load_state()
    assert tab.evaluate("() => [document.referrer, window.opener]") == ["", None]
    assert tab.evaluate("() => sessionStorage.length") == 0
    tab.goto(page_server.root_url + "/")
    tab.wait_for_selector("body[data-ready]")
    assert tab.locator("#who").inner_text() == "Not signed in"
    tab.close()
    assert json.loads(admin.stored_credentials())["clientId"] == "admin"


# Whether the browser lets the page (or a frame of it) use a feature, as Permissions-Policy says.
ALLOWS = "(feature) => document.featurePolicy.allowsFeature(feature)"
# A window opened on another origin (localhost, not 127.0.0.1), and whether the page still sees
# it: with Cross-Origin-Opener-Policy same-origin the two are split and it looks closed.
POPUP_SEEN = """async (url) => {
  const popup = window.open(url);
  await new Promise((done) => setTimeout(done, 1500));
  const seen = !popup.closed;
  popup.close();
  return seen;
}"""


def test_the_browser_applies_the_page_headers(
    open_admin: OpenAdmin, page_server: LiveServer
) -> None:
    """As Chromium applies them: the page's API requests go without a Referer (fails without
    Referrer-Policy), the camera is denied to it (fails without Permissions-Policy) and a window
    it opens on another origin is cut off from it (fails without Cross-Origin-Opener-Policy);
    and as Chromium received them, each of the page's own files carries all three."""
    admin = open_admin(server=page_server)
    responses: list[Any] = []
    admin.page.on("response", lambda response: responses.append(response))
    admin.page.goto(page_server.root_url + "/?view=requests&fresh")
    admin.wait_until_ready()
    sent = [r.request.all_headers() for r in responses if "/api/" in r.url]
    assert sent and [headers.get("referer") for headers in sent] == [None] * len(sent)
    assert admin.page.evaluate(ALLOWS, "camera") is False
    assert admin.page.evaluate(ALLOWS, "fullscreen") is True  # not denied: the check is real
    other_origin = page_server.root_url.replace("127.0.0.1", "localhost")
    assert admin.page.evaluate(POPUP_SEEN, other_origin + "/references/manifest.json") is False

    own = {
        r.url.split("?")[0].rsplit("/", 1)[-1] or "index.html": r
        for r in responses
        if "/api/" not in r.url
    }
    assert {"index.html", "app.js", "style.css"} <= set(own)
    for name, response in own.items():
        headers = response.all_headers()
        assert headers["referrer-policy"] == "no-referrer", name
        assert headers["cross-origin-opener-policy"] == "same-origin", name
        assert "camera=()" in headers["permissions-policy"], name

"""The pool view's `since` against the shared table of `since` inputs
(tests/data/since_cases.json), the one the CLI's tests read too."""

from __future__ import annotations

from collections.abc import Callable

from web.admin_page import AdminPage, sizes

from conftest import ADMIN, LiveServer
from support.since_cases import SINCE_CASES

NOW = "2026-06-01T00:00:00.000Z"
READ_ALL = """async ({ inputs, now }) => {
  const { parseSince } = await import("/format.js");
  return inputs.map((text) => parseSince(text, Date.parse(now)));
}"""


def test_since_reads_the_shared_table(
    open_admin: Callable[..., AdminPage], page_server: LiveServer
) -> None:
    """Each row: that instant, that long before now, or a problem in words (nothing sent)."""
    admin = open_admin(server=page_server)
    inputs = [case["input"] for case in SINCE_CASES]
    read = admin.page.evaluate(READ_ALL, {"inputs": inputs, "now": NOW})
    now_ms = admin.page.evaluate("(now) => Date.parse(now)", NOW)
    expected = []
    for case in SINCE_CASES:
        if case.get("rejected"):
            expected.append("rejected")
        elif "instant" in case:
            expected.append(case["instant"])
        else:
            expected.append(
                admin.page.evaluate("(ms) => new Date(ms).toISOString()", now_ms - case["age_ms"])
            )
    got = [r.get("instant", "rejected") for r in read]
    assert list(zip(inputs, got, strict=True)) == list(zip(inputs, expected, strict=True))
    assert all(r["problem"] for r in read if "problem" in r)


@sizes
def test_ambiguous_or_unitless_since_is_explained_and_not_sent(
    open_admin: Callable[..., AdminPage], page_server: LiveServer, width: int
) -> None:
    """ "5" and "12/04/2026" are refused at the field with the reason; no request is made."""
    admin = open_admin(server=page_server, width=width)
    admin.sign_in(*ADMIN)
    view = admin.section("What the workers of a pool receive")
    before = len(admin.api_requests)
    for text, reason in [
        ("5", "a number without a unit: write an age such as 5h"),
        ("12/04/2026", "could be read day first or month first"),
    ]:
        view.get_by_label("Worker pool").fill("proj-s/linux")
        view.get_by_label("Since").fill(text)
        view.get_by_role("button", name="Show").click()
        assert reason in view.locator("#since-problem").inner_text()
        assert view.get_by_label("Since").get_attribute("aria-invalid") == "true"
    assert len(admin.api_requests) == before

"""The operator's views of issue 15 beside the history: per-purge convergence (purgeStatus),
the caches held on a pool (poolCaches) and purging by pattern with its dry-run review
(createSelectorPurge), each linkable or confirmed as an operator expects, at desktop and
phone sizes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from web.admin_page import AdminPage, admin_api, all_requests, report
from web.test_accessibility import TEXT_CONTRAST

from conftest import ADMIN, READER, LiveServer
from hawk_signing import HawkAuth

OpenAdmin = Callable[..., AdminPage]
LONG_AGO = "2026-01-01T00:00:00.000Z"
GIB = 1024**3


def receipt(cache_name: str, honoured: str, in_use: int = 0) -> dict[str, Any]:
    return {
        "cacheName": cache_name,
        "honouredBefore": honoured,
        "instancesDeleted": 2,
        "bytesFreed": 3 * GIB,
        "failures": 0,
        "inUse": in_use,
    }


def purge_status(server: LiveServer, pool: str) -> dict[str, Any]:
    with admin_api(server) as api:
        answer = api.get(f"/ext/status/{quote(pool, safe='')}")
        assert answer.status_code == 200, answer.text
        purge: dict[str, Any] = answer.json()["purges"][0]
        return purge


def converging_pool(server: LiveServer, pool: str, cache_name: str) -> str:
    """Three active workers on `pool`: one not seen since the purge of `cache_name` (it reported
    before), one that applied it with a copy still in use, and a client id that only fetched
    it. The purge's `before`."""
    report(server, pool, "w-old", caches=[receipt(cache_name, LONG_AGO)])
    with admin_api(server) as api:
        body = {"cacheName": cache_name, "reason": "corrupt"}
        assert api.post(f"/ext/purge/{quote(pool, safe='')}", json=body).status_code == 200
    before: str = purge_status(server, pool)["before"]
    report(server, pool, "w-new", caches=[receipt(cache_name, before, in_use=1)])
    fetched = httpx.get(f"{server.api}/purge-cache/{quote(pool, safe='')}", auth=HawkAuth(*READER))
    assert fetched.status_code == 200
    for _ in range(60):  # fetches are counted in memory and flushed about once a second
        if purge_status(server, pool)["fetched"] == 1:
            return before
        time.sleep(0.05)
    raise AssertionError("the fetch was not counted")


def query(admin: AdminPage) -> dict[str, list[str]]:
    return parse_qs(urlsplit(admin.page.url).query)


def test_convergence_of_a_purge_from_its_history_row_linkable_and_refreshable(
    open_admin: OpenAdmin, page_server: LiveServer
) -> None:
    """ "applied 1/3", the copy in use apart, the fetched client id and the worker not seen
    since (last seen in UTC, no hover), the client-id caveat; in the URL across a reload;
    Refresh reads again."""
    pool, name = "conv-a/linux", "odd\u200bname"
    converging_pool(page_server, pool, name)
    admin = open_admin(server=page_server, path=f"/?pool={quote(pool, safe='')}")
    admin.sign_in(*ADMIN)
    admin.page.get_by_role("button", name=f"Convergence of odd\\u{{200B}}name on {pool}").click()
    admin.wait_until_ready()
    panel = admin.section("Did the workers apply it?")
    assert panel.locator(".tally").inner_text().startswith("applied 1/3 active workers")
    counts = panel.locator(".counts").inner_text()
    assert "Applied: 1 worker, of which 1 worker still had copies in use" in counts
    assert "Fetched, not confirmed: 1 worker" in counts and "Not seen since the purge: 1" in counts
    assert "2 copies, 3 GiB freed" in counts
    assert "pools or workers sharing one credential count as one worker" in panel.inner_text()
    assert "anonymous reads are not counted" in panel.inner_text()
    stragglers = panel.locator("table.stragglers tbody tr")
    by_worker = {
        stragglers.nth(i).locator("td").nth(0).inner_text(): stragglers.nth(i).inner_text()
        for i in range(stragglers.count())
    }
    assert set(by_worker) == {"local/w-old", "reader"}
    assert "Not seen since the purge" in by_worker["local/w-old"]
    assert "client id (only fetches)" in by_worker["reader"]
    last_seen = panel.locator("table.stragglers .utc").first.inner_text()
    assert last_seen.endswith("Z") and panel.locator(".utc").first.is_visible()
    state = query(admin)
    assert state["converge"] == [pool] and state["convergeCache"] == [name]

    admin.reload()
    panel = admin.section("Did the workers apply it?")
    assert panel.locator(".tally").inner_text().startswith("applied 1/3")
    report(
        page_server,
        pool,
        "w-old",
        caches=[receipt(name, purge_status(page_server, pool)["before"])],
    )
    panel.get_by_role("button", name="Refresh convergence").click()
    admin.wait_until_ready()
    assert panel.locator(".tally").inner_text().startswith("applied 2/3")
    assert panel.locator(".superseded").count() == 0

    time.sleep(0.002)  # a newer purge of the name, at a later instant
    with admin_api(page_server) as api:
        again = api.post(f"/purge-cache/{quote(pool, safe='')}", json={"cacheName": name})
        assert again.status_code == 204
    admin.page.get_by_role("button", name="Refresh history").click()
    admin.wait_until_ready()
    convergence = f"Convergence of odd\\u{{200B}}name on {pool}"
    admin.page.get_by_role("button", name=convergence).nth(1).click()  # the older purge
    admin.wait_until_ready()
    assert (
        "was followed by a newer purge of this cache" in panel.locator(".superseded").inner_text()
    )
    admin.page.get_by_role("button", name=convergence).nth(0).click()
    admin.wait_until_ready()
    assert panel.locator(".superseded").count() == 0


def test_convergence_and_caches_explain_a_403_and_a_service_without_them(
    open_admin: OpenAdmin, page_server: LiveServer
) -> None:
    """Without purge-cache:history::<pool> each view names that scope; against a service
    without the extensions (404) each says so."""
    pool = quote("conv-b/linux", safe="")
    admin = open_admin(server=page_server, path=f"/?view=requests&converge={pool}&caches={pool}")
    admin.sign_in(*READER)
    for view in ("Did the workers apply it?", "Caches held on a pool"):
        text = admin.section(view).inner_text()
        assert "needs the scope purge-cache:history::conv-b/linux" in text, text
        assert "these credentials do not hold" in text
    not_found = {"code": "ResourceNotFound", "message": "No such endpoint", "requestInfo": {}}

    def taskcluster(route: Any) -> None:
        route.fulfill(status=404, content_type="application/json", body=json.dumps(not_found))

    admin.page.route("**/ext/status/**", taskcluster)
    admin.page.route("**/ext/caches/**", taskcluster)
    admin.page.get_by_role("button", name="Refresh convergence").click()
    admin.page.get_by_role("button", name="Refresh caches").click()
    admin.wait_until_ready()
    assert "does not report convergence (its purgeStatus extension answered 404" in (
        admin.section("Did the workers apply it?").inner_text()
    )
    assert "keeps no cache inventory (its poolCaches extension answered 404" in (
        admin.section("Caches held on a pool").inner_text()
    )


def test_a_failed_refresh_keeps_the_convergence_and_the_caches_shown(
    open_admin: OpenAdmin, page_server: LiveServer
) -> None:
    """Each panel keeps what it read before under the error, as the tables do."""
    pool, name = "conv-r/linux", "kept"
    converging_pool(page_server, pool, name)
    report(page_server, pool, "w-new", inventory=[{"cacheName": name, "instances": 1, "bytes": 9}])
    where = quote(pool, safe="")
    admin = open_admin(
        server=page_server,
        path=f"/?view=requests&converge={where}&convergeCache={name}&caches={where}",
    )
    admin.sign_in(*ADMIN)
    admin.fail_reads("**/ext/status/**")
    admin.fail_reads("**/ext/caches/**")
    admin.page.get_by_role("button", name="Refresh convergence").click()
    admin.page.get_by_role("button", name="Refresh caches").click()
    admin.wait_until_ready()
    convergence = admin.section("Did the workers apply it?")
    assert "(503 ServiceUnavailable)" in convergence.locator(".error").inner_text()
    assert convergence.locator(".tally").all_inner_texts()[0].startswith("applied 1/3")
    caches = admin.section("Caches held on a pool")
    assert "(503 ServiceUnavailable)" in caches.locator(".error").inner_text()
    assert inventory_rows(admin) == [["kept", "1", "1", "9 B"]]


def test_stragglers_past_the_first_hundred_are_counted_in_a_note(
    open_admin: OpenAdmin, page_server: LiveServer
) -> None:
    """The service lists 100 workers that have not applied a purge; the page says how many
    more there are."""
    pool, name = "conv-s/linux", "many"
    for index in range(103):
        report(page_server, pool, f"w-{index:03d}", caches=[receipt(name, LONG_AGO)])
    with admin_api(page_server) as api:
        assert (
            api.post(f"/purge-cache/{quote(pool, safe='')}", json={"cacheName": name}).status_code
            == 204
        )
    admin = open_admin(
        server=page_server, path=f"/?converge={quote(pool, safe='')}&convergeCache={name}"
    )
    admin.sign_in(*ADMIN)
    panel = admin.section("Did the workers apply it?")
    assert panel.locator(".tally").inner_text().startswith("applied 0/103")
    assert panel.locator("table.stragglers tbody tr").count() == 100
    assert "…and 3 workers more not listed (the service lists the first 100)." in (
        panel.inner_text()
    )


def inventory_rows(admin: AdminPage) -> list[list[str]]:
    rows = admin.page.locator("table.inventory tbody tr")
    return [
        [rows.nth(i).locator("td").nth(c).inner_text() for c in range(4)]
        for i in range(rows.count())
    ]


def test_caches_of_a_pool_sorted_in_the_browser_and_purged_exactly(
    open_admin: OpenAdmin, page_server: LiveServer
) -> None:
    """Names (invisible characters marked), workers, copies and total size in binary units
    summed over workers; the headers sort and the order is in the URL; "Purge…" goes through
    the confirmed purge flow with exactly the row's name."""
    pool, odd = "inv-a/linux", "big\u200b "
    report(
        page_server,
        pool,
        "w1",
        inventory=[
            {"cacheName": "a-small", "instances": 1, "bytes": 100, "lastUsed": LONG_AGO},
            {"cacheName": odd, "instances": 2, "bytes": 3 * GIB, "lastUsed": LONG_AGO},
        ],
    )
    report(
        page_server,
        pool,
        "w2",
        inventory=[
            {"cacheName": "a-small", "instances": 1, "bytes": 50, "lastUsed": LONG_AGO},
            {"cacheName": "mid", "instances": 1, "bytes": 1536 * 1024},
        ],
    )
    admin = open_admin(server=page_server, path="/")
    admin.sign_in(*ADMIN)
    inventory = admin.section("Caches held on a pool")
    inventory.get_by_label("Pool to list caches of").fill(pool)
    inventory.get_by_role("button", name="List caches").click()
    admin.wait_until_ready()
    assert inventory_rows(admin) == [
        ["a-small", "2", "2", "150 B"],
        ["big\\u{200B}␣", "1", "2", "3 GiB"],
        ["mid", "1", "1", "1.5 MiB"],
    ]
    assert "not reported" in inventory.locator("tbody tr").nth(2).inner_text()
    assert "3 cache names, 5 copies, 3 GiB in all" in inventory.inner_text()

    inventory.get_by_role("button", name="Total size").click()
    assert [row[0] for row in inventory_rows(admin)] == ["big\\u{200B}␣", "mid", "a-small"]
    header = inventory.locator("th[aria-sort]")
    assert header.get_attribute("aria-sort") == "descending"
    assert query(admin)["caches"] == [pool] and query(admin)["cachesSort"] == ["size-desc"]
    inventory.get_by_role("button", name="Total size").click()
    assert [row[0] for row in inventory_rows(admin)] == ["a-small", "mid", "big\\u{200B}␣"]
    admin.page.go_back()
    admin.wait_until_ready()
    assert [row[0] for row in inventory_rows(admin)] == ["big\\u{200B}␣", "mid", "a-small"]

    inventory.get_by_role("button", name=f"Purge big\\u{{200B}}␣ on {pool}…").click()
    assert admin.page.locator("#pinned-cache-name").inner_text() == "big\\u{200B}␣"
    admin.page.get_by_role("button", name="Review purge…").click()
    assert admin.purge_confirmed(1) == f"Purge requested for 1 cache on {pool}."
    purged = [r["cacheName"] for r in all_requests(page_server) if r["provisionerId"] == "inv-a"]
    assert odd in purged and "a-small" not in purged


# ---- purging by pattern ------------------------------------------------------------------------
# The 409 and grouped-scope tests serve createSelectorPurge's answers from a stand-in
# (FakeSelectorPurge, through Playwright's request interception), where the timing of a changed
# set can be controlled; test_selector_purge_against_the_service_… drives the real endpoint.


def pair(pool: str, cache_name: str, workers: int, size: int) -> dict[str, Any]:
    return {
        "workerPoolId": pool,
        "cacheName": cache_name,
        "workers": workers,
        "bytes": size,
        "knownFrom": ["inventory", "history"],
    }


MATCHED = [
    pair("proj-a/linux", "level-3-checkouts", 3, GIB),
    pair("proj-a/linux", "level-3-sccache\n", 1, GIB // 2),
    pair("proj-a/win", "level-3-checkouts", 1, 0),
]
GREW = [*MATCHED, pair("proj-a/win", "level-3-new", 1, 1024)]


class FakeSelectorPurge:
    """The createSelectorPurge contract, answered from a list of (status, body) per call."""

    def __init__(self, page: Any, answers: list[tuple[int, dict[str, Any]]]) -> None:
        self.answers = answers
        self.bodies: list[dict[str, Any]] = []
        page.route("**/api/purge-cache/v1/ext/selector-purge", self._answer)

    def _answer(self, route: Any) -> None:
        self.bodies.append(json.loads(route.request.post_data))
        status, body = self.answers.pop(0)
        route.fulfill(status=status, content_type="application/json", body=json.dumps(body))


def matched(pairs: list[dict[str, Any]], digest: str, dry_run: bool = True) -> dict[str, Any]:
    return {
        "selector": {"workerPoolPattern": "proj-a/*", "cacheNamePattern": "level-3-*"},
        "dryRun": dry_run,
        "applied": not dry_run,
        "pairs": pairs,
        "totals": {
            "pairs": len(pairs),
            "pools": len({p["workerPoolId"] for p in pairs}),
            "workers": sum(p["workers"] for p in pairs),
            "bytes": sum(p["bytes"] for p in pairs),
        },
        "digest": digest,
        "confirmThreshold": 20,
        **({} if dry_run else {"before": "2026-12-05T22:00:00.000Z"}),
    }


def error(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "requestInfo": {}}


def review(admin: AdminPage, pool: str = "proj-a/*", cache: str = "level-3-*") -> Any:
    section = admin.section("Purge by pattern")
    section.get_by_label("Worker pool pattern").fill(pool)
    section.get_by_label("Cache name pattern").fill(cache)
    section.get_by_role("button", name="Review what matches…").click()
    admin.wait_until_ready()
    return section


def test_selector_purge_reviews_then_needs_a_deliberate_confirm_and_reviews_again_on_409(
    open_admin: OpenAdmin, page_server: LiveServer
) -> None:
    """The dry run's pairs and totals; Enter pressed again does not purge; "Purge 3 caches"
    sends the review's digest; a 409 says the set changed and shows the new review, whose
    confirmation sends the new digest."""
    admin = open_admin(server=page_server, path="/")
    fake = FakeSelectorPurge(
        admin.page,
        [
            (200, matched(MATCHED, "sha256:aa")),
            (409, error("RequestConflict", "The matched set changed since the dry run.")),
            (200, matched(GREW, "sha256:bb")),
            (200, matched(GREW, "sha256:bb", dry_run=False)),
        ],
    )
    admin.sign_in(*ADMIN)
    section = admin.section("Purge by pattern")
    section.get_by_label("Reason").fill("bad toolchain")
    section = review(admin)
    title = section.locator("#selector-review-title")
    assert title.inner_text() == "3 caches on 2 pools match: 5 workers hold 1.5 GiB."
    rows = section.locator("table.pairs tbody tr")
    assert rows.nth(1).locator("td").nth(1).inner_text() == "level-3-sccache\\n"
    assert "a worker's inventory, the purge history" in rows.nth(0).inner_text()
    assert admin.page.evaluate("() => document.activeElement.id") == "selector-review-title"
    admin.page.keyboard.press("Enter")
    admin.page.keyboard.press("Enter")
    assert len(fake.bodies) == 1 and fake.bodies[0]["dryRun"] is True

    section.get_by_role("button", name="Purge 3 caches").click()
    admin.wait_until_ready()
    assert "changed since your review, so nothing was purged" in section.inner_text()
    assert title.inner_text().startswith("4 caches on 2 pools match")
    section.get_by_role("button", name="Purge 4 caches").click()
    admin.wait_until_ready()
    assert section.locator("#selector-result h3").inner_text() == (
        "Purge requested for 4 caches on 2 pools."
    )
    sent = {
        "workerPoolPattern": "proj-a/*",
        "cacheNamePattern": "level-3-*",
        "reason": "bad toolchain",
    }
    assert fake.bodies == [
        {**sent, "dryRun": True},
        {**sent, "dryRun": False, "digest": "sha256:aa"},
        {**sent, "dryRun": True},
        {**sent, "dryRun": False, "digest": "sha256:bb"},
    ]


def test_selector_purge_against_the_service_purges_what_it_reviewed(
    open_admin: OpenAdmin, page_server: LiveServer
) -> None:
    """The real createSelectorPurge: the review lists what the inventory and the history know,
    the confirm purges exactly those pairs (workers read them through v1 purgeRequests), and a
    pair appearing between review and confirm is a 409 that reviews again, purging nothing; the
    history's rows of those purges show the patterns."""
    inventory = [{"cacheName": "level-3-x", "instances": 1, "bytes": GIB}]
    report(page_server, "selreal/linux", "w1", inventory=inventory)
    with admin_api(page_server) as api:
        body = {"cacheName": "level-3-y"}
        assert api.post("/purge-cache/selreal%2Fwin", json=body).status_code == 204
    admin = open_admin(server=page_server, path="/")
    admin.sign_in(*ADMIN)
    section = review(admin, "selreal/*", "level-3-*")
    title = section.locator("#selector-review-title")
    assert title.inner_text().startswith("2 caches on 2 pools match")
    assert "a worker's inventory" in section.locator("table.pairs tbody tr").nth(0).inner_text()
    grown = [*inventory, {"cacheName": "level-3-z", "instances": 1, "bytes": 1024}]
    report(page_server, "selreal/linux", "w1", inventory=grown)
    section.get_by_role("button", name="Purge 2 caches").click()
    admin.wait_until_ready()
    assert "changed since your review, so nothing was purged" in section.inner_text()
    assert all_cache_names(page_server, "selreal/linux") == []
    assert title.inner_text().startswith("3 caches on 2 pools match")
    section.get_by_role("button", name="Purge 3 caches").click()
    admin.wait_until_ready()
    assert section.locator("#selector-result h3").inner_text() == (
        "Purge requested for 3 caches on 2 pools."
    )
    assert all_cache_names(page_server, "selreal/linux") == ["level-3-x", "level-3-z"]
    assert all_cache_names(page_server, "selreal/win") == ["level-3-y"]
    admin.wait_until_ready()  # the history, read again after the purge, says where it came from
    row = admin.page.locator("#history-rows tr", has_text="level-3-z")
    assert "by pattern: pool selreal/*, cache level-3-*" in row.locator("td").nth(2).inner_text()


def all_cache_names(server: LiveServer, pool: str) -> list[str]:
    """The cache names a worker of the pool is told to purge (v1 purgeRequests)."""
    answer = httpx.get(f"{server.api}/purge-cache/{quote(pool, safe='')}", auth=HawkAuth(*READER))
    assert answer.status_code == 200, answer.text
    return sorted(r["cacheName"] for r in answer.json()["requests"])


def test_selector_purge_groups_missing_scopes_shows_a_bad_pattern_and_hides_on_404(
    open_admin: OpenAdmin, page_server: LiveServer
) -> None:
    """A 403's missing scopes grouped (the selector's own, reading pools, purging each pair by
    pool); a 400's message; a 404 hides the feature with a note."""
    missing = [
        "purge-cache:proj-a/*:level-3-*",
        "purge-cache:history::proj-a/win",
        "purge-cache:proj-a/linux:level-3-checkouts",
        "purge-cache:proj-a/win:level-3-x",
    ]
    message = (
        "Client ID admin does not have sufficient scopes and is missing the following scopes:"
        f"\n\n```\n{json.dumps({'AllOf': missing}, indent=2)}\n```\n\nThis request requires the "
        "client to satisfy the following scope expression:\n\n```\n{}\n```"
    )
    admin = open_admin(server=page_server, path="/")
    FakeSelectorPurge(
        admin.page,
        [
            (403, error("InsufficientScopes", message)),
            (400, error("InputError", "Pattern `level-[3]`: `[` is not special; escape nothing")),
            (404, error("ResourceNotFound", "No such endpoint")),
        ],
    )
    admin.sign_in(*ADMIN)
    section = review(admin)
    refused = section.locator("#selector-result").inner_text()
    assert "Not allowed: 4 missing scopes (403 InsufficientScopes)" in refused
    groups = section.locator("#selector-result h4")
    assert groups.all_inner_texts() == [
        "The selector itself, as written",
        "Reading the matched pools (to expand the selector)",
        "Purging each matched cache",
    ]
    assert section.locator("#selector-result summary").all_inner_texts()[:2] == [
        "proj-a/linux: 1 scope",
        "proj-a/win: 1 scope",
    ]

    review(admin, cache="level-[3]")
    assert "`[` is not special" in section.locator("#selector-result").inner_text()
    review(admin)
    assert not section.get_by_label("Worker pool pattern").is_visible()
    assert "has no purges by pattern (its createSelectorPurge extension answered 404" in (
        section.inner_text()
    )


# What is wider than its box (for the failure message).
OVERFLOWING = """() => [...document.querySelectorAll("body *")]
  .filter((node) => node.clientWidth > 0 && node.scrollWidth > node.clientWidth + 1)
  .map((node) => `${node.tagName}#${node.id}.${node.className} ${node.scrollWidth}px`)"""


def test_operator_views_on_a_phone_do_not_scroll_sideways(
    open_admin: OpenAdmin, page_server: LiveServer
) -> None:
    """At 360 px, convergence (opened from an open request's row), the caches of a 38/38 pool
    (still sortable) and a selector review are cards that fit the width, their text at least
    4.5:1 in the dark scheme."""
    pool = f"{'p' * 38}/{'w' * 38}"
    converging_pool(page_server, pool, "c" * 60)
    report(page_server, pool, "w1", inventory=[{"cacheName": "x" * 80, "instances": 1, "bytes": 9}])
    admin = open_admin(
        width=360,
        height=740,
        server=page_server,
        path=f"/?view=requests&caches={quote(pool, safe='')}",
    )
    FakeSelectorPurge(admin.page, [(200, matched([pair(pool, "y" * 70, 2, GIB)], "sha256:cc"))])
    admin.sign_in(*ADMIN)
    admin.page.get_by_role("button", name=f"Convergence of {'c' * 60} on {pool}").click()
    admin.wait_until_ready()
    assert admin.section("Did the workers apply it?").locator(".tally").is_visible()
    assert admin.page.locator("table.inventory tbody tr").count() == 1
    assert admin.page.get_by_role("button", name="Total size").is_visible()  # sorts on a phone
    review(admin)
    assert admin.page.get_by_role("button", name="Purge 1 cache").is_visible()
    admin.page.emulate_media(color_scheme="dark")
    texts: list[dict[str, Any]] = admin.page.evaluate(TEXT_CONTRAST)
    assert [text for text in texts if text["text"] < 4.5] == []
    assert admin.page.evaluate("() => document.documentElement.scrollWidth") <= 360, (
        admin.page.evaluate(OVERFLOWING)
    )

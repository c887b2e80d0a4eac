"""Selector purges over HTTP (issue 16, items 1-4): `createSelectorPurge` expands a selector
into the (pool, cache name) pairs the inventory, the history and the open requests know, shows
them on a dry run without changing anything, purges them all as ordinary requests when applied
(with the digest above the confirm threshold, 409 when the set changed), under staged scopes
whose 403 lists every missing one; `listPoolSelectors` serves applied selectors to agents.
SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from test_api import assert_error

from conftest import ADMIN, CLIENTS_TOML, LiveServer, db_args, start_server
from hawk_signing import HawkAuth

READS_A = ("reads-a", "reads-a-token-0123456789")  # reads proj-a pools only
NO_SELECTOR = ("no-selector", "no-selector-token-0123456789")  # every pair, not the selector
ONE_PAIR_SHORT = ("one-short", "one-short-token-0123456789")  # all but proj-a/win's pair
REPORTER = ("reporter", "reporter-token-0123456789")
READS_LINUX = ("reads-linux", "reads-linux-token-0123456789")  # reads gsix-a/linux only
CLIENTS = CLIENTS_TOML + "".join(
    f'\n[[clients]]\nclient_id = "{client_id}"\naccess_token = "{token}"\nscopes = {scopes}\n'
    for (client_id, token), scopes in (
        (READS_A, '["purge-cache:history::proj-a/*"]'),
        (
            NO_SELECTOR,
            '["purge-cache:history::*", "purge-cache:proj-a/linux:*", "purge-cache:proj-a/win:*"]',
        ),
        (
            ONE_PAIR_SHORT,
            '["purge-cache:history::*", "purge-cache:proj-a/*:level-3-*", '
            '"purge-cache:proj-a/linux:*"]',
        ),
        (REPORTER, '["purge-cache:report::*"]'),
        (READS_LINUX, '["purge-cache:history::gsix-a/linux"]'),
    )
)


def selector(stem: str) -> dict[str, str]:
    return {"workerPoolPattern": f"{stem}-a/*", "cacheNamePattern": "level-3-*"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server per backend, with a confirm threshold of 2 pairs; each test works on pools
    of its own (`stem`), so that no selector of one test reaches another's."""
    data = tmp_path_factory.mktemp("selectors")
    (data / "test-clients.toml").write_text(CLIENTS)
    server = start_server(data, *db_args(request.param), "--selector-confirm-threshold", "2")
    yield server
    server.stop()


@pytest.fixture
def stem(request: pytest.FixtureRequest) -> str:
    """The provisioner stem of this test's pools (the scope test's clients name `proj`)."""
    names = {
        "test_scope_refusals_list_exactly_the_missing_scopes": "proj",
        "test_the_first_refusal_names_every_scope_that_shows_no_unreadable_cache": "gsix",
    }
    return names.get(request.node.originalname, request.node.originalname[5:12])


def post(live: LiveServer, body: dict[str, Any], who: tuple[str, str] = ADMIN) -> httpx.Response:
    return httpx.post(f"{live.api}/ext/selector-purge", json=body, auth=HawkAuth(*who), timeout=10)


def purge(live: LiveServer, pool: str, cache: str) -> None:
    url = f"{live.api}/purge-cache/{pool.replace('/', '%2F')}"
    done = httpx.post(url, json={"cacheName": cache}, auth=HawkAuth(*ADMIN), timeout=10)
    assert done.status_code == 204, done.text


def requests_of(live: LiveServer, pool: str) -> list[str]:
    url = f"{live.api}/purge-cache/{pool.replace('/', '%2F')}"
    answer = httpx.get(url, auth=HawkAuth(*ADMIN), timeout=10).json()
    return sorted(request["cacheName"] for request in answer["requests"])


def hold(live: LiveServer, pool: str, worker: str, caches: dict[str, int]) -> None:
    """A worker of `pool` reports an inventory: cache name -> bytes."""
    body = {
        "workerGroup": "local",
        "workerId": worker,
        "caches": [],
        "inventory": [{"cacheName": n, "instances": 1, "bytes": b} for n, b in caches.items()],
    }
    url = f"{live.api}/ext/report/{pool.replace('/', '%2F')}"
    done = httpx.post(url, json=body, auth=HawkAuth(*REPORTER), timeout=10)
    assert done.status_code == 204, done.text


def seed(live: LiveServer, stem: str) -> None:
    """STEM-a/linux: two workers hold level-3-a (one also level-3-b and level-1);
    STEM-a/win: level-3-old is in the history only; STEM-b/linux (not matched) holds
    level-3-a."""
    hold(live, f"{stem}-a/linux", "w1", {"level-3-a": 100, "level-3-b": 10, "level-1": 5})
    hold(live, f"{stem}-a/linux", "w2", {"level-3-a": 200})
    hold(live, f"{stem}-b/linux", "w1", {"level-3-a": 1})
    purge(live, f"{stem}-a/win", "level-3-old")


def missing(body: dict[str, Any]) -> list[str]:
    """The scopes a 403 says are missing."""
    block = body["message"].split("missing the following scopes:")[1].split("```")[1]
    found = json.loads(block) if block.strip().startswith("{") else block.strip()
    return scopes_of(found)


def scopes_of(expression: Any) -> list[str]:
    if isinstance(expression, str):
        return [expression]
    ((_, items),) = expression.items()
    return [scope for item in items for scope in scopes_of(item)]


def pairs(answer: dict[str, Any]) -> list[tuple[str, str, int, int, list[str]]]:
    return [
        (p["workerPoolId"], p["cacheName"], p["workers"], p["bytes"], p["knownFrom"])
        for p in answer["pairs"]
    ]


def test_a_dry_run_lists_what_is_known_and_changes_nothing(live: LiveServer, stem: str) -> None:
    """Inventory and history pairs, sorted, with workers and bytes; totals and digest; the
    pools' v1 purgeRequests unchanged; the same answer twice."""
    seed(live, stem)
    done = post(live, {**selector(stem), "dryRun": True})
    assert done.status_code == 200, done.text
    answer = done.json()
    assert pairs(answer) == [
        (f"{stem}-a/linux", "level-3-a", 2, 300, ["inventory"]),
        (f"{stem}-a/linux", "level-3-b", 1, 10, ["inventory"]),
        (f"{stem}-a/win", "level-3-old", 0, 0, ["history", "requests"]),
    ]
    assert answer["totals"] == {"pairs": 3, "pools": 2, "workers": 2, "bytes": 310}
    assert (answer["dryRun"], answer["applied"], answer["confirmThreshold"]) == (True, False, 2)
    assert answer["selector"] == selector(stem) and "before" not in answer
    assert answer["digest"].startswith("sha256:")
    assert requests_of(live, f"{stem}-a/linux") == []
    assert requests_of(live, f"{stem}-a/win") == ["level-3-old"]
    assert post(live, {**selector(stem), "dryRun": True}).json() == answer


def test_apply_above_the_threshold_needs_the_digest_and_refuses_a_changed_set(
    live: LiveServer, stem: str
) -> None:
    """3 pairs > threshold 2: no digest is a 400 saying to dry-run; a digest of another set
    (a worker reported a new matching cache meanwhile) is 409 RequestConflict and purges
    nothing; the current digest purges every pair as an ordinary v1 request."""
    seed(live, stem)
    refused = post(live, selector(stem))
    assert "dry-run it first" in assert_error(refused, 400, "InputError")["message"]
    digest = post(live, {**selector(stem), "dryRun": True}).json()["digest"]
    hold(live, f"{stem}-a/win", "w9", {"level-3-new": 7})
    conflict = post(live, {**selector(stem), "digest": digest})
    assert_error(conflict, 409, "RequestConflict")
    assert requests_of(live, f"{stem}-a/linux") == []
    fresh = post(live, {**selector(stem), "dryRun": True}).json()
    done = post(live, {**selector(stem), "digest": fresh["digest"], "reason": "bad toolchain"})
    assert done.status_code == 200, done.text
    applied = done.json()
    assert (applied["applied"], applied["dryRun"], applied["totals"]["pairs"]) == (True, False, 4)
    assert applied["digest"] == fresh["digest"] and applied["before"]
    assert requests_of(live, f"{stem}-a/linux") == ["level-3-a", "level-3-b"]
    assert requests_of(live, f"{stem}-a/win") == ["level-3-new", "level-3-old"]
    assert requests_of(live, f"{stem}-b/linux") == []


def test_the_history_names_the_selector_of_each_pair_it_purged(live: LiveServer, stem: str) -> None:
    """Every pair's history event carries the selector text, the reason and the endpoint."""
    hold(live, f"{stem}-a/linux", "w1", {"level-3-a": 1})
    done = post(live, {**selector(stem), "reason": "why", "link": "https://bugs.example/1"})
    assert done.status_code == 200, done.text
    url = f"{live.api}/ext/history?workerPoolId={stem}-a%2Flinux"
    (event,) = httpx.get(url, auth=HawkAuth(*ADMIN), timeout=10).json()["events"]
    assert event["selector"] == selector(stem)
    assert (event["endpoint"], event["cacheName"], event["reason"]) == (
        "createSelectorPurge",
        "level-3-a",
        "why",
    )


def test_scope_refusals_list_exactly_the_missing_scopes(live: LiveServer, stem: str) -> None:
    """Dry run without a matched pool's read scope: 403 naming that pool's read scope and no
    cache name; apply without the literal selector scope: 403 naming it alone; apply with
    every scope but one pair's: 403 naming that pair alone. Nothing is purged."""
    seed(live, stem)
    dry = post(live, {**selector(stem), "dryRun": True}, READS_A)
    assert dry.status_code == 200, dry.text  # reads every proj-a pool
    wide = {"workerPoolPattern": f"{stem}-*/linux", "cacheNamePattern": "level-3-*", "dryRun": True}
    body = assert_error(post(live, wide, READS_A), 403, "InsufficientScopes")
    assert "purge-cache:history::proj-b/linux" in body["message"]
    assert "level-3" not in body["message"].split("---")[0].replace("level-3-*", "")
    digest = post(live, {**selector(stem), "dryRun": True}).json()["digest"]
    missing_selector = post(live, {**selector(stem), "digest": digest}, NO_SELECTOR)
    body = assert_error(missing_selector, 403, "InsufficientScopes")
    assert missing(body) == ["purge-cache:proj-a/*:level-3-*"]
    one_short = post(live, {**selector(stem), "digest": digest}, ONE_PAIR_SHORT)
    body = assert_error(one_short, 403, "InsufficientScopes")
    assert missing(body) == ["purge-cache:proj-a/win:level-3-old"]
    assert requests_of(live, f"{stem}-a/linux") == []


def test_the_first_refusal_names_every_scope_that_shows_no_unreadable_cache(
    live: LiveServer, stem: str
) -> None:
    """Applying with none of the scopes: one 403 names both matched pools' read scopes and
    the literal selector scope, no pair's; reading gsix-a/linux only: also that pool's pairs'
    scopes, never gsix-a/win's cache name. A dry run's 403 names the read scopes alone.
    Nothing is purged."""
    seed(live, stem)
    digest = post(live, {**selector(stem), "dryRun": True}).json()["digest"]
    apply = {**selector(stem), "digest": digest}
    reads = ["purge-cache:history::gsix-a/linux", "purge-cache:history::gsix-a/win"]
    body = assert_error(post(live, apply, REPORTER), 403, "InsufficientScopes")
    assert missing(body) == [*reads, "purge-cache:gsix-a/*:level-3-*"]
    body = assert_error(post(live, apply, READS_LINUX), 403, "InsufficientScopes")
    assert missing(body) == [
        "purge-cache:history::gsix-a/win",
        "purge-cache:gsix-a/*:level-3-*",
        "purge-cache:gsix-a/linux:level-3-a",
        "purge-cache:gsix-a/linux:level-3-b",
    ]
    assert "level-3-old" not in body["message"]
    dry = post(live, {**selector(stem), "dryRun": True}, REPORTER)
    assert missing(assert_error(dry, 403, "InsufficientScopes")) == reads
    assert requests_of(live, f"{stem}-a/linux") == []


def test_callers_without_credentials_are_refused_before_the_expansion(
    live: LiveServer, stem: str
) -> None:
    """Without credentials (and anonymous scopes reading nothing), a dry run (and a cancel) is a
    403 naming the read scope of the pool pattern, also when the selector matches nothing: no
    caller without credentials makes the service read the whole history. A client with credentials
    but no read scope is answered by the published scopes: an empty dry run for a selector
    matching nothing, a 403 naming each matched pool's read scope otherwise."""
    seed(live, stem)
    nothing = {"workerPoolPattern": f"{stem}-none/*", "cacheNamePattern": "*", "dryRun": True}
    url = f"{live.api}/ext/selector-purge"
    cancel = f"{live.api}/ext/selector-cancel"
    for target, body in (
        (url, nothing),
        (url, {**selector(stem), "dryRun": True}),
        (cancel, selector(stem)),
    ):
        refused = assert_error(httpx.post(target, json=body, timeout=10), 403, "InsufficientScopes")
        assert "requires Taskcluster credentials" in refused["message"]
        assert f"purge-cache:history::{body['workerPoolPattern']}" in refused["message"]
    empty = post(live, nothing, REPORTER)
    assert empty.status_code == 200, empty.text
    assert empty.json()["pairs"] == []
    matched = post(live, {**selector(stem), "dryRun": True}, REPORTER)
    matched_body = assert_error(matched, 403, "InsufficientScopes")
    assert f"purge-cache:history::{stem}-a/linux" in matched_body["message"]


def test_syntax_errors_are_400s_with_the_matchers_message(live: LiveServer, stem: str) -> None:
    """The matcher's message for a bad pattern, and a pool pattern needs its one `/`."""
    bad = post(live, {"workerPoolPattern": f"{stem}-a/**", "cacheNamePattern": "x"})
    assert "** is not supported" in assert_error(bad, 400, "InputError")["message"]
    escape = post(live, {"workerPoolPattern": f"{stem}-a/x", "cacheNamePattern": "a\\b"})
    assert "backslash escapes only" in assert_error(escape, 400, "InputError")["message"]
    no_slash = post(live, {"workerPoolPattern": f"{stem}-a*", "cacheNamePattern": "x"})
    assert "workerPoolPattern" in assert_error(no_slash, 400, "InputValidationError")["message"]


def test_agents_read_the_applied_selectors_of_their_pool(live: LiveServer, stem: str) -> None:
    """listPoolSelectors: the selectors whose pool pattern matches, newest first, filtered by
    `since`; a selector matching no known pair is still served (for caches only agents know);
    other pools' selectors are not."""
    done = post(live, {"workerPoolPattern": f"{stem}-a/*", "cacheNamePattern": "tmp-*"})
    assert done.status_code == 200 and done.json()["pairs"] == [], done.text
    first = done.json()["before"]
    later = post(live, {"workerPoolPattern": f"{stem}-?/linux", "cacheNamePattern": "x\\*"}).json()
    post(live, {"workerPoolPattern": f"{stem}-b/*", "cacheNamePattern": "*"})
    url = f"{live.api}/ext/selectors/{stem}-a%2Flinux"
    answer = httpx.get(url, auth=HawkAuth(*ADMIN), timeout=10).json()
    assert answer["workerPoolId"] == f"{stem}-a/linux"
    assert [(s["workerPoolPattern"], s["cacheNamePattern"]) for s in answer["selectors"]] == [
        (f"{stem}-?/linux", "x\\*"),
        (f"{stem}-a/*", "tmp-*"),
    ]
    assert [s["before"] for s in answer["selectors"]] == [later["before"], first]
    since = httpx.get(url, params={"since": later["before"]}, auth=HawkAuth(*ADMIN), timeout=10)
    assert len(since.json()["selectors"]) == (1 if later["before"] > first else 2)
    refused = httpx.get(f"{live.api}/ext/selectors/{stem}-a%2Flinux", timeout=10)
    assert_error(refused, 403, "InsufficientScopes")

"""Selectors on the worker (issue 16, item 4): a real `purgecache agent sync` reads its pool's
applied selectors (`listPoolSelectors` of a real server) and deletes its caches whose names
match, created before the selector, including caches the service never heard of, counting
them in its receipts; against a service without the endpoint it says so once, backs off and
syncs as before."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.proxy import RecordingProxy
from agent.test_reports import purge, stored, sync, wait_for
from agent.worker import Worker
from purgecache.agent.errors import ServiceUnreachable
from purgecache.agent.selectors import LocalSelector, PoolSelectors, local_requests
from purgecache.client import ConnectionFailed, Credentials, PurgeCache

from conftest import ADMIN, LiveServer, db_args, start_server
from support.selector_cases import CASES, case_id

CACHE_ROWS = [case for case in CASES if case["kind"] == "cache"]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def any_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The agent tests' SQLite server, or a PostgreSQL one for this module: selectors reach
    agents the same way on both backends (each test uses a worker pool of its own)."""
    if request.param == "sqlite":
        yield request.getfixturevalue("server")
        return
    database = db_args("postgres")
    live = start_server(tmp_path_factory.mktemp("agent-pg"), *database)
    live.db_url = database[1]  # type: ignore[attr-defined]
    yield live
    live.stop()


def apply_selector(root_url: str, pool_pattern: str, cache_pattern: str) -> int:
    """Apply a selector as an administrator; how many known pairs it purged."""
    with PurgeCache(root_url, Credentials(*ADMIN)) as client:
        return len(client.create_selector_purge(pool_pattern, cache_pattern).pairs)


def test_a_selector_deletes_caches_the_service_never_heard_of(
    tmp_path: Path, any_server: LiveServer
) -> None:
    """The worker's `tmp-build` was never reported, so the selector expands to no pair; the
    next sync deletes it all the same (not `keep`), and the receipt the agent then reports
    counts the deleted copy."""
    pool = f"s-{uuid.uuid4().hex[:12]}/linux"
    worker = Worker(tmp_path / "w0", pool, any_server.root_url)
    doomed = worker.free_instance("tmp-build")
    kept = worker.free_instance("keep")
    assert apply_selector(any_server.root_url, f"{pool.split('/')[0]}/*", "tmp-*") == 0
    done = sync(worker, "--report-interval", "1ms")
    assert f"deleted {doomed.parent}" in done.stdout, done.stdout + done.stderr
    assert not doomed.exists() and kept.exists()
    wait_for(lambda: any(r.receipt.cache_name == "tmp-build" for r in stored(any_server, pool)[0]))
    (receipt,) = [
        r.receipt for r in stored(any_server, pool)[0] if r.receipt.cache_name == "tmp-build"
    ]
    assert receipt.instances_deleted == 1


def selector_on_a_worker(tmp_path: Path, root_url: str) -> tuple[str, str, Worker, Path, Path]:
    """A worker of a pool of its own holding `tmp-known` (purged by name before, so known to
    the service) and `tmp-unknown`, and the selector `<provisioner>/*` `tmp-*` applied (to
    the one known pair): the pool, the pool pattern, the worker and the two copies."""
    pool = f"s-{uuid.uuid4().hex[:12]}/linux"
    pattern = f"{pool.split('/')[0]}/*"
    worker = Worker(tmp_path / "w0", pool, root_url)
    purge(root_url, pool, "tmp-known")  # known from then on
    time.sleep(0.01)  # the copies are newer than that purge
    known = worker.free_instance("tmp-known")
    unknown = worker.free_instance("tmp-unknown")
    assert apply_selector(root_url, pattern, "tmp-*") == 1
    return pool, pattern, worker, known, unknown


def test_a_cancelled_selector_no_longer_reaches_the_agent(
    tmp_path: Path, any_server: LiveServer
) -> None:
    """Applied, then cancelled before the next sync (with the purge it wrote of the known
    `tmp-known`): the sync deletes neither `tmp-known` nor `tmp-unknown`, which only the
    agent knows."""
    root_url = any_server.root_url
    pool, pattern, worker, known, unknown = selector_on_a_worker(tmp_path, root_url)
    with PurgeCache(root_url, Credentials(*ADMIN)) as client:
        done = client.cancel_selector_purge(pattern, "tmp-*", reason="wrong selector")
    assert done.pairs == ((pool, "tmp-known"),)
    kept = sync(worker)
    assert "0 instance(s) deleted" in kept.stdout, kept.stdout + kept.stderr
    assert known.exists() and unknown.exists()


def test_cancelling_one_pair_withdraws_it_from_the_selector_on_the_agent(
    tmp_path: Path, any_server: LiveServer
) -> None:
    """`cancel_purge` of the pair a selector purged by name (`tmp-known`) also withdraws it
    from the selector (`exceptCacheNames`): the sync keeps that cache and still deletes
    `tmp-unknown`, which the selector reaches on the agent only."""
    root_url = any_server.root_url
    pool, _, worker, known, doomed = selector_on_a_worker(tmp_path, root_url)
    with PurgeCache(root_url, Credentials(*ADMIN)) as client:
        client.cancel_purge(pool, "tmp-known", reason="keep this one")
        (served,) = client.list_pool_selectors(pool).selectors
    assert served.except_cache_names == ("tmp-known",)
    done = sync(worker)
    assert f"deleted {doomed.parent}" in done.stdout, done.stdout + done.stderr
    assert known.exists() and not doomed.exists()


def test_without_the_endpoint_an_agent_says_so_once_and_purges_as_before(
    tmp_path: Path, server: LiveServer
) -> None:
    """Through a proxy answering listPoolSelectors 404 (a service without it): the sync
    says so once, still applies purge requests, and asks no more during the back-off."""
    pool = f"s-{uuid.uuid4().hex[:12]}/linux"
    proxy = RecordingProxy(server.root_url)
    proxy.missing = ("/ext/selectors/",)
    try:
        worker = Worker(tmp_path / "w0", pool, proxy.root_url)
        kept = worker.free_instance("checkouts")
        first = sync(worker)
        assert "selectors not read" in first.stderr and "404" in first.stderr
        purge(server.root_url, pool, "checkouts")
        second = sync(worker)
        assert "selectors not read" not in second.stderr
        assert f"deleted {kept.parent}" in second.stdout
        assert sum("/ext/selectors/" in p for p in proxy.paths) == 1
    finally:
        proxy.stop()


def test_local_requests_use_the_one_matcher() -> None:
    """Each local name a selector's cache pattern matches, with its `before`, but the names
    withdrawn from it; escapes hold."""
    names = ["a*", "ab", "level-3-x", "level-3-y", "x"]
    withdrawn = LocalSelector("level-?-*", 7, frozenset({"level-3-y"}))
    found = local_requests([("a\\*", 5), withdrawn], names)
    assert found == [("a*", 5), ("level-3-x", 7)]


@pytest.mark.parametrize("case", CACHE_ROWS, ids=[case_id(c) for c in CACHE_ROWS])
def test_local_requests_follow_the_one_table(
    case: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Each cache row of the matcher's table: the agent asks to purge exactly the local names
    the row matches, with the selector's `before`; a pattern the table refuses is skipped,
    its reason logged."""
    names = case.get("match", []) + case.get("miss", [])
    found = local_requests([(case["pattern"], 7)], names)
    if "error" in case:
        assert found == [] and case["error"] in caplog.text
        return
    assert found == [(name, 7) for name in case["match"]]


def test_selectors_are_asked_when_due_and_a_failure_fails_the_sync(tmp_path: Path) -> None:
    """Asked on the first sync, not again within the interval, then again; a connection
    failure is ServiceUnreachable (the sync changes nothing) and the next sync asks again."""
    now = [1_000_000]
    answers: list[object] = [
        [("a*", 1)],
        [("b*", 2)],
        ConnectionFailed("down", url="u", attempts=1),
    ]
    answers.append([("c*", 3)])

    def source(pool: str) -> list[tuple[str, int]]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    selectors = PoolSelectors(tmp_path, source, lambda: now[0], interval_ms=1000)
    assert selectors("p/w") == [("a*", 1)]
    now[0] += 999
    assert selectors("p/w") == ()
    now[0] += 1
    assert selectors("p/w") == [("b*", 2)]
    now[0] += 1000
    with pytest.raises(ServiceUnreachable):
        selectors("p/w")
    assert selectors("p/w") == [("c*", 3)]

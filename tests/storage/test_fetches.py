"""Fetches, convergence facts and worker pruning (issue 13, items 4 and 5) through each
backend's public methods: one row per pool and client id whatever the order of flushes,
reporting client ids kept apart, facts filtered to the activity window, pruning by age."""

from __future__ import annotations

import asyncio

from purgecache.fetchlog import FetchLog
from purgecache.model import CacheReceipt, WorkerReport
from purgecache.storage import Storage
from storage.test_contract import NOW

POOL = "fx/linux"


def report(worker: str, at_before: int, in_use: int = 0) -> WorkerReport:
    receipt = CacheReceipt("c", at_before, 1, 100, None, 0, in_use)
    return WorkerReport(POOL, "local", worker, (receipt,))


def test_fetch_rows_keep_the_newest_of_each_value_in_any_order(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """Flushes from several processes arrive in any order: the newest `before` served and the
    latest sighting win; a reporting client id is not a fetcher."""

    async def scenario() -> None:
        await storage.record_fetches([(POOL, "gw", NOW + 5, NOW + 10, 0)])
        await storage.record_fetches([(POOL, "gw", NOW + 1, NOW + 2, 0), (POOL, "ag", 7, NOW, 0)])
        await storage.record_fetches([(POOL, "ag", -1, NOW, 1)])
        (tally,) = await storage.purge_tallies(POOL, [("c", NOW + 5)], NOW, 10)
        assert (tally.fetchers, tally.fetching) == ((1, 1), [("gw", NOW + 5, NOW + 10)])
        (later,) = await storage.purge_tallies(POOL, [("c", NOW + 6)], NOW + 11, 10)
        assert (later.fetchers, later.fetching) == ((0, 0), [])

    runner.run(scenario())


def test_tallies_count_active_reporters_by_their_receipts(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """Per purge: reporters heard from since the window's start, applied when their receipt
    honours its `before` (in use apart, with what they freed), else fetched when they reported
    since the purge; stragglers listed by name up to the limit."""

    async def scenario() -> None:
        await storage.report_worker_sync(report("gone", 50), 5)  # outside the window
        await storage.report_worker_sync(report("w1", 50, in_use=2), NOW)
        await storage.report_worker_sync(report("w2", 49), NOW)
        await storage.report_worker_sync(report("w3", 49), 40)
        await storage.report_worker_sync(WorkerReport(POOL, "local", "w4", ()), 30)
        tallies = await storage.purge_tallies(POOL, [("c", 50), ("other", 1)], 20, 2)
        c, other = tallies
        assert c.reporters == (4, 1, 1, 1, 100, 1)
        assert c.straggling == [("local", "w2", NOW), ("local", "w3", 40)]
        assert other.reporters == (4, 0, 0, 0, 0, 4)
        assert (await storage.purge_tallies(POOL, [], 0, 2)) == []

    runner.run(scenario())


def test_prune_forgets_workers_and_client_ids_not_heard_from(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """Workers (with their receipts) and fetching client ids last heard from before the
    cut-off go; the others stay."""

    async def scenario() -> None:
        await storage.report_worker_sync(report("old", 1), NOW - 100)
        await storage.report_worker_sync(report("new", 1), NOW)
        await storage.record_fetches([(POOL, "gone", 1, NOW - 100, 0), (POOL, "here", 1, NOW, 0)])
        assert await storage.prune_workers(NOW - 50) == 2
        (tally,) = await storage.purge_tallies(POOL, [("c", 2)], 0, 10)
        assert tally.straggling == [("local", "new", NOW)]
        assert tally.fetching == [("here", 1, NOW)]
        old = WorkerReport(POOL, "local", "old", ())  # its receipt went with it
        await storage.report_worker_sync(old, NOW)
        (again,) = await storage.purge_tallies(POOL, [("c", 1)], 0, 10)
        assert again.reporters[:2] == (2, 1)

    runner.run(scenario())


def test_the_fetch_log_keeps_one_entry_per_pool_and_client() -> None:
    """Notes aggregate to the newest `before` per (pool, client id); a drain empties the log;
    restored rows are noted again; a reporter-only client id is its own row."""
    log = FetchLog()
    for newest in (5, 9, 3):
        log.note(POOL, "gw", newest)
    log.note_reporter(POOL, "agent")
    rows = log.drain(NOW)
    assert sorted(rows) == [(POOL, "agent", -1, NOW, 1), (POOL, "gw", 9, NOW, 0)]
    assert log.drain(NOW) == []
    log.restore(rows)
    assert sorted(log.drain(NOW + 1)) == [
        (POOL, "agent", -1, NOW + 1, 1),
        (POOL, "gw", 9, NOW + 1, 0),
    ]

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
        facts = await storage.pool_facts(POOL, "c", NOW)
        assert facts.fetchers == [("gw", NOW + 5, NOW + 10)]
        assert (await storage.pool_facts(POOL, None, NOW + 11)).fetchers == []

    runner.run(scenario())


def test_facts_hold_active_reporters_and_the_cache_receipts(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """Reporters heard from since the window's start, with the receipts of the cache asked
    about (or of every cache)."""

    async def scenario() -> None:
        await storage.report_worker_sync(report("old", 1), NOW - 100)
        await storage.report_worker_sync(report("w1", 50, in_use=2), NOW)
        facts = await storage.pool_facts(POOL, "c", NOW - 10)
        assert facts.reported == [("local", "w1", NOW)]
        assert sorted(facts.receipts) == [
            ("local", "old", "c", 1, 1, 100, 0),
            ("local", "w1", "c", 50, 1, 100, 2),
        ]
        assert (await storage.pool_facts(POOL, "other", NOW - 10)).receipts == []

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
        facts = await storage.pool_facts(POOL, None, 0)
        assert facts.reported == [("local", "new", NOW)]
        assert [r[1] for r in facts.receipts] == ["new"]
        assert facts.fetchers == [("here", 1, NOW)]

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

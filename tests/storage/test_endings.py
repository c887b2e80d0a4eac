"""How purges end, as every backend stores it (issue 16, item 5): superseded by a newer purge
of the same cache (within one write batch too), expired or converged at the end of the
retention, removed by the convergence sweep only while the purge is the one it decided
about, and cancelled."""

from __future__ import annotations

import asyncio
from pathlib import Path

from purgecache.events import model as events
from purgecache.model import HistoryFilter, Provenance, PurgeRequest
from purgecache.storage import SqliteStorage, Storage
from purgecache.storage.migrations import statements
from purgecache.storage.settling import Settled
from purgecache.storage.sqlite import MIGRATIONS

from support.sqlite_files import sqlite_file

NOW = 1_900_000_000_000
ORIGIN = Provenance("createPurge", "alice", reason="wrong pool")


async def put(storage: Storage, request: PurgeRequest) -> None:
    await storage.purge(request, request.to_entry(), ORIGIN)


async def ends(storage: Storage, pool: str) -> list[tuple[str, int, int | None, str | None]]:
    """(cache, time, ended, reason) of a pool's history, oldest first."""
    page = await storage.purge_history(HistoryFilter(pool), None, 100)
    return [(e.cache_name, e.time - NOW, e.ended, e.end_reason) for e in reversed(page.events)]


def test_every_purge_ends_the_one_before_it_as_superseded(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """Each purge of a cache ends the previous one at its own time, whether that one was
    stored earlier or queued in the same group commit; the last stays open."""

    async def scenario() -> None:
        await put(storage, PurgeRequest("s/w", "c0", NOW - 10, NOW + 99))
        await asyncio.gather(
            *(put(storage, PurgeRequest("s/w", f"c{i % 2}", NOW + i, NOW + 99)) for i in range(6))
        )
        found = await ends(storage, "s/w")
        superseded = [(c, t, None if e is None else e - NOW, r) for c, t, e, r in found]
        assert sorted(superseded) == [
            ("c0", -10, 0, "superseded"),
            ("c0", 0, 2, "superseded"),
            ("c0", 2, 4, "superseded"),
            ("c0", 4, None, None),
            ("c1", 1, 3, "superseded"),
            ("c1", 3, 5, "superseded"),
            ("c1", 5, None, None),
        ]

    runner.run(scenario())


def test_expiry_ends_a_purge_at_its_expiry_converged_if_it_had(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """A purge removed at the end of its retention ended then: `converged` when the sweep had
    found every active worker applied it, else `expired`."""

    async def scenario() -> None:
        applied = PurgeRequest("e/w", "applied", NOW, NOW + 5)
        ignored = PurgeRequest("e/w", "ignored", NOW, NOW + 7)
        for request in (applied, ignored):
            await put(storage, request)
        converged = events.converged("e/w", "applied", NOW, NOW + 1, 2)
        await storage.settle([Settled(applied, converged, None)], NOW + 1)
        assert [(r.cache_name, c) for r, c in await storage.unsettled(NOW + 2)] == [
            ("ignored", False)
        ]
        assert await storage.expire(NOW + 10) == 2
        assert await ends(storage, "e/w") == [
            ("applied", 0, NOW + 5, "converged"),
            ("ignored", 0, NOW + 7, "expired"),
        ]

    runner.run(scenario())


def test_the_sweep_leaves_a_purge_made_since_it_looked(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """A sweep decision about one purge does nothing to a newer purge of the same cache; an
    until-applied purge past its retention is looked at again until it goes."""

    async def scenario() -> None:
        old = PurgeRequest("g/w", "c", NOW, NOW + 1000, NOW + 10)
        await put(storage, old)
        assert await storage.unsettled(NOW + 20) == [(old, False)]
        newer = PurgeRequest("g/w", "c", NOW + 30, NOW + 1030, NOW + 40)
        await put(storage, newer)
        await storage.settle([Settled(old, None, "converged")], NOW + 31)
        assert [r.before for r in await storage.purge_requests("g/w", NOW + 31)] == [NOW + 30]
        await storage.settle([Settled(newer, None, "converged")], NOW + 50)
        assert await storage.purge_requests("g/w", NOW + 50) == []
        assert await ends(storage, "g/w") == [
            ("c", 0, NOW + 30, "superseded"),
            ("c", 30, NOW + 50, "converged"),
        ]

    runner.run(scenario())


def test_cancel_removes_the_open_purge_and_ends_it(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """Cancelling answers the open purge's `before` and ends it as cancelled; a cache without
    an open purge (none, or expired) answers None and changes nothing."""

    async def scenario() -> None:
        await put(storage, PurgeRequest("k/w", "c", NOW, NOW + 100))
        await put(storage, PurgeRequest("k/w", "old", NOW - 200, NOW - 100))
        assert await storage.cancel(("k/w", "c"), NOW + 1, ORIGIN) == NOW
        assert await storage.cancel(("k/w", "c"), NOW + 2, ORIGIN) is None
        assert await storage.cancel(("k/w", "old"), NOW + 2, ORIGIN) is None
        assert await storage.purge_requests("k/w", NOW - 300) == [
            PurgeRequest("k/w", "old", NOW - 200, NOW - 100)
        ]
        assert (await ends(storage, "k/w"))[1] == ("c", 0, NOW + 1, "cancelled")

    runner.run(scenario())


def test_the_policy_is_read_back_and_kept_by_a_bulk_import(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """A request's until-applied policy comes back with a pool's requests, and a bulk import
    keeps the one of the later `before`."""

    async def scenario() -> None:
        kept = PurgeRequest("i/w", "kept", NOW, NOW + 900, NOW + 10)
        normal = PurgeRequest("i/w", "normal", NOW, NOW + 10)
        await put(storage, kept)
        await storage.put_many([(normal, normal.to_entry())])
        assert await storage.purge_requests("i/w", NOW) == [kept, normal]
        newer = PurgeRequest("i/w", "normal", NOW + 1, NOW + 901, NOW + 11)
        await storage.put_many([(newer, newer.to_entry()), (kept, kept.to_entry())])
        assert await storage.purge_requests("i/w", NOW) == [kept, newer]

    runner.run(scenario())


def test_migration_10_ends_the_purges_that_ended_before_it(tmp_path: Path) -> None:
    """Upgrading a schema-8 database: a purge followed by a later one of its cache is
    `superseded`, one whose request is gone `expired`, the open one stays open; when they
    ended is not known."""
    path = tmp_path / "schema8.db"
    with sqlite_file(path, isolation_level=None) as db:
        for migration in MIGRATIONS:
            if migration.number <= 8:
                for statement in statements(migration.sql):
                    db.execute(statement)
        db.execute("PRAGMA user_version=8")
        purges = [("m/w", "c", NOW - 20), ("m/w", "c", NOW - 10), ("m/w", "gone", NOW - 30)]
        db.executemany(
            "INSERT INTO purge_history (worker_pool_id, cache_name, purged_at, endpoint) "
            "VALUES (?, ?, ?, 'purgeCache')",
            purges,
        )
        db.execute("INSERT INTO cache_purges VALUES ('m/w', 'c', ?, ?, '{}')", (NOW - 10, NOW))
    db.close()
    storage = SqliteStorage(path)

    async def scenario() -> list[tuple[str, int, int | None, str | None]]:
        assert await storage.upgrade() >= 10
        try:
            return await ends(storage, "m/w")
        finally:
            await storage.close()

    assert sorted(asyncio.run(scenario())) == [
        ("c", -20, None, "superseded"),
        ("c", -10, None, None),
        ("gone", -30, None, "expired"),
    ]


def test_cancelling_a_selector_withdraws_it_and_the_open_purges_it_wrote(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """`selector_purges` answers the open selector's `before` and the pairs whose open purge
    it wrote (not one purged by name since); `cancel_selector` withdraws the selector and
    those purges, each ended as cancelled, and answers the pairs that went; a stale
    `before` or a selector no longer open changes nothing (None)."""
    from purgecache.storage.selectors import AppliedSelector, StoredSelector

    async def scenario() -> None:
        origin = ORIGIN._replace(
            endpoint="createSelectorPurge",
            selector_pool_pattern="x-*/w",
            selector_cache_pattern="c*",
        )
        pairs = [("x-1/w", "ca"), ("x-1/w", "cb"), ("x-2/w", "ca")]
        requests = [PurgeRequest(pool, cache, NOW, NOW + 100) for pool, cache in pairs]
        rows = [(request, request.to_entry(), origin) for request in requests]
        await storage.purge_selector(StoredSelector("x-*/w", "c*", "x-", NOW, NOW + 100), rows)
        await put(storage, PurgeRequest("x-1/w", "cb", NOW + 1, NOW + 100))  # by name
        wrote = [("x-1/w", "ca"), ("x-2/w", "ca")]
        assert await storage.selector_purges("x-*/w", "c*", NOW + 2) == (NOW, wrote)
        assert await storage.selector_purges("x-*/w", "d*", NOW + 2) is None
        stale = AppliedSelector("x-*/w", "c*", NOW - 1)
        assert await storage.cancel_selector(stale, pairs, NOW + 2, ORIGIN) is None
        applied = AppliedSelector("x-*/w", "c*", NOW)
        assert await storage.cancel_selector(applied, pairs, NOW + 3, ORIGIN) == wrote
        assert await storage.pool_selectors("x-1/w", 0, NOW + 3, 10) == []
        assert [r.cache_name for r in await storage.purge_requests("x-1/w", NOW + 3)] == ["cb"]
        assert await ends(storage, "x-2/w") == [("ca", 0, NOW + 3, "cancelled")]
        assert await storage.selector_purges("x-*/w", "c*", NOW + 3) is None
        assert await storage.cancel_selector(applied, [], NOW + 4, ORIGIN) is None

    runner.run(scenario())


def test_cancelling_a_pair_withdraws_it_from_the_selectors_covering_it(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """`cancel` with covering selectors records the pair withdrawn from each (only when a
    purge was cancelled), `selector_exceptions` lists the pool's withdrawn pairs of open
    selectors, and the expiry job forgets those of selectors no longer open."""
    from purgecache.storage.selectors import AppliedSelector, StoredSelector

    async def scenario() -> None:
        await storage.purge_selector(StoredSelector("y-*/w", "c*", "y-", NOW, NOW + 50), [])
        await storage.purge_selector(StoredSelector("y-1/w", "*", "y-1/w", NOW, NOW + 100), [])
        covering = [AppliedSelector("y-*/w", "c*", NOW), AppliedSelector("y-1/w", "*", NOW)]
        assert await storage.cancel(("y-1/w", "ca"), NOW + 1, ORIGIN, covering) is None
        assert await storage.selector_exceptions("y-1/w", NOW + 1) == []  # nothing cancelled
        await put(storage, PurgeRequest("y-1/w", "ca", NOW + 2, NOW + 200))
        assert await storage.cancel(("y-1/w", "ca"), NOW + 3, ORIGIN, covering) == NOW + 2
        assert await storage.selector_exceptions("y-1/w", NOW + 3) == [
            ("y-*/w", "c*", NOW, "ca"),
            ("y-1/w", "*", NOW, "ca"),
        ]
        assert await storage.selector_exceptions("y-2/w", NOW + 3) == []
        await storage.expire(NOW + 50)
        assert await storage.selector_exceptions("y-1/w", NOW + 50) == [("y-1/w", "*", NOW, "ca")]
        # forgotten, not merely hidden: the same selector stored again does not bring it back
        await storage.purge_selector(StoredSelector("y-*/w", "c*", "y-", NOW, NOW + 99), [])
        assert await storage.selector_exceptions("y-1/w", NOW + 50) == [("y-1/w", "*", NOW, "ca")]

    runner.run(scenario())

"""SQLite reads run on the event loop's thread and never wait there: when another process
holds the file, they are retried on the writer's thread, which waits for it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from purgecache.model import Provenance, PurgeRequest
from purgecache.storage import SqliteStorage, sqlite

from support.sqlite_locks import held, ticks_until

NOW = 1_795_000_000_000


async def put(storage: SqliteStorage, name: str) -> None:
    request = PurgeRequest("pool/x", name, NOW, NOW + 1000)
    await storage.purge(request, request.to_entry(), Provenance("purgeCache"))


def test_reads_see_committed_writes_at_once(tmp_path: Path) -> None:
    """A read on the event loop's thread sees what the writer's thread just committed."""

    async def scenario() -> None:
        storage = SqliteStorage(tmp_path / "db.sqlite")
        await storage.upgrade()
        for name in ("b", "a"):
            await put(storage, name)
        assert [r.cache_name for r in await storage.purge_requests("pool/x", NOW)] == ["a", "b"]
        assert len((await storage.list_entries(None, 10, NOW)).entries) == 2
        await put(storage, "c")
        assert len((await storage.list_entries(None, 10, NOW)).entries) == 3
        await storage.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("read", ["pool", "listing"])
def test_a_read_blocked_by_another_process_waits_on_the_writer_thread(
    tmp_path: Path, read: str
) -> None:
    """A read finding the file locked is retried on the writer's thread, which waits for it,
    while the event loop keeps turning (a listing page too, read in its own transaction)."""
    path = tmp_path / "db.sqlite"

    async def prepare() -> None:
        storage = SqliteStorage(path)
        await storage.upgrade()
        await put(storage, "a")
        await put(storage, "b")
        await storage.close()

    asyncio.run(prepare())
    # another process holding the file exclusively
    exclusive = (
        "PRAGMA locking_mode=EXCLUSIVE",
        "BEGIN EXCLUSIVE",
        "UPDATE cache_purges SET expires = expires",
    )
    with held(path, *exclusive) as release:

        async def scenario() -> tuple[float, int, int]:
            storage = SqliteStorage(path)
            ticker = asyncio.create_task(ticks_until(release))  # the loop keeps turning
            asyncio.get_running_loop().call_later(0.3, release.set)
            started = time.monotonic()
            if read == "pool":
                found = len(await storage.purge_requests("pool/x", NOW))
            else:
                page = await storage.list_entries(None, 1, NOW)
                assert page.next_after == ("pool/x", "a")
                found = len(page.entries) + 1
            waited = time.monotonic() - started
            ticks = await ticker
            await storage.close()
            return waited, found, ticks

        waited, found, ticks = asyncio.run(scenario())
    assert found == 2
    assert waited >= 0.25  # it waited for the lock instead of failing
    assert ticks > 4  # ...and not on the event loop's thread (blocked: 1 or 2)


def test_listing_queries_walk_the_primary_key_without_sorting(tmp_path: Path) -> None:
    """A listing page and its last row's key are read in key order along the primary key; no
    query sorts (a sort would read every open row for each page)."""
    conn = sqlite.connect(tmp_path / "plan.db")
    sqlite.upgrade(conn)
    first, following = (0, 1), ("p/w", "c", 0, 1)
    for query, args in [
        (sqlite._FIRST_ENTRIES, first),
        (sqlite._FIRST_KEY, first),
        (sqlite._NEXT_ENTRIES, following),
        (sqlite._NEXT_KEY, following),
    ]:
        plan = " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {query}", args))
        assert "TEMP B-TREE" not in plan, (query, plan)
    conn.close()

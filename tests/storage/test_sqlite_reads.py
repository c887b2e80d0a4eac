"""SQLite reads run on the event loop's thread and never wait there: when another process
holds the file, they are retried on the writer's thread, which waits for it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from purgecache.storage import SqliteStorage

NOW = 1_795_000_000_000


def test_reads_see_committed_writes_at_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        storage = SqliteStorage(tmp_path / "db.sqlite")
        await storage.upgrade()
        for name in ("b", "a"):
            await storage.purge("pool/x", name, NOW, NOW + 1000)
        assert [r.cache_name for r in await storage.purge_requests("pool/x", NOW)] == ["a", "b"]
        assert len(await storage.list_wire(None, 10, NOW)) == 2
        await storage.purge("pool/x", "c", NOW, NOW + 1000)
        assert len(await storage.list_wire(None, 10, NOW)) == 3
        await storage.close()

    asyncio.run(scenario())


def test_a_read_blocked_by_another_process_waits_on_the_writer_thread(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"

    async def prepare() -> None:
        storage = SqliteStorage(path)
        await storage.upgrade()
        await storage.purge("pool/x", "a", NOW, NOW + 1000)
        await storage.close()

    asyncio.run(prepare())
    locked, release = threading.Event(), threading.Event()

    def hold_exclusively() -> None:  # another process holding the file exclusively
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("PRAGMA locking_mode=EXCLUSIVE")
        other.execute("BEGIN EXCLUSIVE")
        other.execute("UPDATE cache_purges SET expires = expires")
        locked.set()
        release.wait(5)
        other.execute("COMMIT")
        other.close()

    holder = threading.Thread(target=hold_exclusively)
    holder.start()
    assert locked.wait(5)

    async def scenario() -> tuple[float, int, int]:
        storage = SqliteStorage(path)
        ticks = 0

        async def tick() -> None:  # the event loop keeps turning while the read waits
            nonlocal ticks
            while not release.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        asyncio.get_running_loop().call_later(0.3, release.set)
        started = time.monotonic()
        rows = await storage.purge_requests("pool/x", NOW)
        waited = time.monotonic() - started
        await ticker
        await storage.close()
        return waited, len(rows), ticks

    try:
        waited, found, ticks = asyncio.run(scenario())
    finally:
        release.set()
        holder.join()
    assert found == 1
    assert waited >= 0.25  # it waited for the lock instead of failing
    assert ticks > 10  # ...and not on the event loop's thread

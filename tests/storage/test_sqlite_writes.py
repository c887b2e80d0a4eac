"""SQLite batches of purges and reports are committed on the event loop's thread when that
cannot wait; when another writer holds the file, or a commit would fsync, the writer's thread
does it, and the event loop keeps turning meanwhile. Either way what is acknowledged is
committed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from purgecache.model import Provenance, PurgeRequest, WorkerReport
from purgecache.storage import SqliteStorage, sqlite

from support.sqlite_files import sqlite_file
from support.sqlite_locks import held, ticks_until

NOW = 1_795_000_000_000


def purge_row(name: str) -> tuple[PurgeRequest, bytes, Provenance]:
    request = PurgeRequest("pool/x", name, NOW, NOW + 1000)
    return request, request.to_entry(), Provenance("purgeCache")


def stored(path: Path, column: str = "cache_name", table: str = "cache_purges") -> list[str]:
    """A column of a table's rows, sorted, as another process reading the file finds them."""
    with sqlite_file(path) as conn:
        return sorted(value for (value,) in conn.execute(f"SELECT {column} FROM {table}"))


@pytest.mark.parametrize("synchronous", ["NORMAL", "FULL"])
def test_purges_are_committed_when_acknowledged(tmp_path: Path, synchronous: str) -> None:
    """Purges written one by one and many at once are in the file, with their history, as
    soon as each `purge` returns (seen by another connection, as another process would)."""
    path = tmp_path / "db.sqlite"

    async def scenario() -> list[list[str]]:
        storage = SqliteStorage(path, synchronous)
        await storage.upgrade()
        await storage.start()
        seen = []
        await storage.purge(*purge_row("one"))
        seen.append(stored(path))
        await asyncio.gather(*(storage.purge(*purge_row(f"many-{n:02}")) for n in range(40)))
        seen.append(stored(path))
        await storage.close()
        return seen

    first, second = asyncio.run(scenario())
    assert first == ["one"]
    assert second == ["many-00", *(f"many-{n:02}" for n in range(1, 40)), "one"]
    assert stored(path, table="purge_history") == second


LOCKS = {  # another process writing, or holding the file exclusively (as WAL recovery does)
    "write": ("BEGIN IMMEDIATE", "UPDATE cache_purges SET expires = expires"),
    "exclusive": (
        "PRAGMA locking_mode=EXCLUSIVE",
        "BEGIN EXCLUSIVE",
        "UPDATE cache_purges SET expires = expires",
    ),
}


@pytest.mark.parametrize("lock", sorted(LOCKS))
@pytest.mark.parametrize("write", ["purge", "report"])
def test_a_write_finding_the_file_locked_waits_off_the_event_loop(
    tmp_path: Path, write: str, lock: str
) -> None:
    """Another process holds the file for 0.3 s: a purge (or a worker's report) made
    meanwhile, the first of its process, waits for it and is then committed (not lost, not
    refused), while the event loop keeps turning."""
    path = tmp_path / "db.sqlite"

    async def store(storage: SqliteStorage, name: str) -> None:
        if write == "purge":
            await storage.purge(*purge_row(name))
        else:
            await storage.report_worker_sync(WorkerReport("pool/x", "local", name, ()), NOW)

    async def prepare() -> None:
        storage = SqliteStorage(path)
        await storage.upgrade()
        await store(storage, "before")  # the loop's own writer connection exists
        await storage.close()

    asyncio.run(prepare())
    with held(path, *LOCKS[lock]) as release:

        async def scenario() -> tuple[float, int]:
            storage = SqliteStorage(path)
            ticker = asyncio.create_task(ticks_until(release))
            asyncio.get_running_loop().call_later(0.3, release.set)
            started = time.monotonic()
            await store(storage, "during")
            waited = time.monotonic() - started
            ticks = await ticker
            await storage.close()
            return waited, ticks

        waited, ticks = asyncio.run(scenario())
    where = ("cache_name", "cache_purges") if write == "purge" else ("worker_id", "worker_reports")
    assert stored(path, *where) == ["before", "during"]
    assert waited >= 0.25  # it waited for the lock instead of failing or dropping the write
    assert ticks > 4  # ...and not on the event loop's thread (blocked: 1 or 2)


def test_a_steady_stream_of_purges_keeps_the_wal_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Purges written without a pause for 1.5 s: the background checkpoints alone never copy
    the whole WAL (frames keep coming meanwhile), so SQLite would never start it over and it
    would grow with every purge; past `RESTART_FRAMES` (100 here) the writer's thread
    checkpoints it whole and the WAL starts over: the file stays a small fraction of that."""
    monkeypatch.setattr(sqlite, "RESTART_FRAMES", 100)
    monkeypatch.setattr(sqlite, "CHECKPOINT_INTERVAL", 0.05)
    path = tmp_path / "db.sqlite"
    wal = Path(f"{path}-wal")

    async def scenario() -> tuple[int, int]:
        storage = SqliteStorage(path)
        await storage.upgrade()
        await storage.start()
        written, deadline = 0, time.monotonic() + 1.5
        while time.monotonic() < deadline:
            names = [f"c-{written + n}" for n in range(20)]
            await asyncio.gather(*(storage.purge(*purge_row(name)) for name in names))
            written += len(names)
        size = wal.stat().st_size
        await storage.close()
        return written, size

    written, size = asyncio.run(scenario())
    frames = size // (4096 + 24)  # its largest size: a frame is a page and its header
    assert written > 2_000  # every purge adds frames: without restarts, more than 1 per 2
    assert frames < min(5_000, written // 4), (written, frames)

"""The storage contract, run against every backend (SQLite here; PostgreSQL joins later)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from purgecache.storage import SqliteStorage, Storage
from purgecache.storage.base import SchemaTooNewError
from purgecache.storage.sqlite import LATEST_VERSION, connect, upgrade

NOW = 1_900_000_000_000


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    backend = SqliteStorage(tmp_path / "contract.db")
    asyncio.run(backend.upgrade())
    yield backend
    asyncio.run(backend.close())


def test_upsert_keeps_one_row_and_moves_both_times(storage: Storage) -> None:
    """Purging a stored (pool, cache) again overwrites before and expires."""
    async def scenario() -> None:
        await storage.purge("p/w", "c", NOW, NOW + 10)
        await storage.purge("p/w", "c", NOW + 5, NOW + 20)
        (row,) = await storage.purge_requests("p/w", NOW)
        assert (row.before, row.expires) == (NOW + 5, NOW + 20)
    asyncio.run(scenario())


def test_pool_reads_are_ordered_and_skip_expired(storage: Storage) -> None:
    """A pool's rows come in cache-name order without rows whose expiry has passed."""
    async def scenario() -> None:
        await storage.purge("p/w", "b", NOW, NOW + 100)
        await storage.purge("p/w", "a", NOW, NOW + 100)
        await storage.purge("p/w", "gone", NOW, NOW)
        await storage.purge("other/w", "x", NOW, NOW + 100)
        rows = await storage.purge_requests("p/w", NOW)
        assert [r.cache_name for r in rows] == ["a", "b"]
    asyncio.run(scenario())


def test_keyset_pages_in_code_point_order(storage: Storage) -> None:
    """list_page walks (pool, cache name) in code-point order from an exclusive cursor."""
    async def scenario() -> None:
        keys = [("a/b", "Z"), ("a/b", "a"), ("a/b", "é"), ("a-/b", "x"), ("A/b", "x")]
        for pool, name in keys:
            await storage.purge(pool, name, NOW, NOW + 100)
        first = await storage.list_page(None, 2, NOW)
        rest = await storage.list_page(
            (first[-1].worker_pool_id, first[-1].cache_name), 10, NOW
        )
        got = [(r.worker_pool_id, r.cache_name) for r in first + rest]
        assert got == sorted(keys)
    asyncio.run(scenario())


def test_expire_deletes_exactly_the_expired(storage: Storage) -> None:
    """expire(now) removes rows with expires <= now and reports how many."""
    async def scenario() -> None:
        await storage.purge("p/w", "a", NOW - 3, NOW - 2)
        await storage.purge("p/w", "b", NOW - 3, NOW)
        await storage.purge("p/w", "c", NOW - 3, NOW + 1)
        assert await storage.expire(NOW) == 2
        assert await storage.expire(NOW) == 0
        assert [r.cache_name for r in await storage.list_page(None, 10, 0)] == ["c"]
    asyncio.run(scenario())


def test_check_succeeds_on_a_healthy_database(storage: Storage) -> None:
    """check() returns quietly when the database answers."""
    asyncio.run(storage.check())


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database from a newer purgecache is not downgraded."""
    conn = connect(tmp_path / "new.db")
    conn.execute(f"PRAGMA user_version={LATEST_VERSION + 1}")
    with pytest.raises(SchemaTooNewError, match="refusing to downgrade"):
        upgrade(conn)


def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    """Running the migrations twice leaves the schema at the latest version."""
    conn = connect(tmp_path / "x.db")
    assert upgrade(conn) == LATEST_VERSION
    assert upgrade(conn) == LATEST_VERSION

"""The storage contract, run against every backend (SQLite here; PostgreSQL joins later)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from purgecache.storage import NO_CHANGES, Changes, SchemaError, SqliteStorage, Storage
from purgecache.storage.base import SchemaTooNewError
from purgecache.storage.postgres import PostgresStorage
from purgecache.storage.sqlite import LATEST_VERSION, connect, upgrade

import pg

NOW = 1_900_000_000_000


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    """One event loop for the whole test (connection pools belong to a loop)."""
    with asyncio.Runner() as loop:
        yield loop


@pytest.fixture(params=["sqlite", "postgres"])
def storage(
    request: pytest.FixtureRequest, tmp_path: Path, runner: asyncio.Runner
) -> Iterator[Storage]:
    """A freshly migrated, empty storage of each backend."""
    backend: Storage
    if request.param == "sqlite":
        backend = SqliteStorage(tmp_path / "contract.db")
    else:
        backend = PostgresStorage(pg.create_database())
    runner.run(backend.upgrade())
    yield backend
    runner.run(backend.close())


def test_upsert_keeps_one_row_and_moves_both_times(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """Purging a stored (pool, cache) again overwrites before and expires."""

    async def scenario() -> None:
        await storage.purge("p/w", "c", NOW, NOW + 10)
        await storage.purge("p/w", "c", NOW + 5, NOW + 20)
        (row,) = await storage.purge_requests("p/w", NOW)
        assert (row.before, row.expires) == (NOW + 5, NOW + 20)

    runner.run(scenario())


def test_concurrent_purges_of_one_cache_share_a_batch_and_the_last_stands(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """Purges queued together (one group commit) may name the same cache several times; every
    one is acknowledged, one row remains, and it holds the last one queued."""

    async def scenario() -> None:
        await asyncio.gather(
            *(storage.purge("p/w", f"c{i % 3}", NOW + i, NOW + 100 + i) for i in range(30)),
            storage.purge("q/w", "c0", NOW, NOW + 100),
        )
        rows = await storage.purge_requests("p/w", NOW)
        assert [(r.cache_name, r.before) for r in rows] == [
            ("c0", NOW + 27),
            ("c1", NOW + 28),
            ("c2", NOW + 29),
        ]
        assert len(await storage.purge_requests("q/w", NOW)) == 1

    runner.run(scenario())


def test_pool_reads_are_ordered_and_skip_expired(storage: Storage, runner: asyncio.Runner) -> None:
    """A pool's rows come in cache-name order without rows whose expiry has passed."""

    async def scenario() -> None:
        await storage.purge("p/w", "b", NOW, NOW + 100)
        await storage.purge("p/w", "a", NOW, NOW + 100)
        await storage.purge("p/w", "gone", NOW, NOW)
        await storage.purge("other/w", "x", NOW, NOW + 100)
        rows = await storage.purge_requests("p/w", NOW)
        assert [r.cache_name for r in rows] == ["a", "b"]

    runner.run(scenario())


def test_keyset_pages_in_code_point_order(storage: Storage, runner: asyncio.Runner) -> None:
    """list_page walks (pool, cache name) in code-point order from an exclusive cursor."""

    async def scenario() -> None:
        keys = [("a/b", "Z"), ("a/b", "a"), ("a/b", "é"), ("a-/b", "x"), ("A/b", "x")]
        for pool, name in keys:
            await storage.purge(pool, name, NOW, NOW + 100)
        first = await storage.list_page(None, 2, NOW)
        rest = await storage.list_page((first[-1].worker_pool_id, first[-1].cache_name), 10, NOW)
        got = [(r.worker_pool_id, r.cache_name) for r in first + rest]
        assert got == sorted(keys)

    runner.run(scenario())


def test_expire_deletes_exactly_the_expired(storage: Storage, runner: asyncio.Runner) -> None:
    """expire(now) removes rows with expires <= now and reports how many."""

    async def scenario() -> None:
        await storage.purge("p/w", "a", NOW - 3, NOW - 2)
        await storage.purge("p/w", "b", NOW - 3, NOW)
        await storage.purge("p/w", "c", NOW - 3, NOW + 1)
        assert await storage.expire(NOW) == 2
        assert await storage.expire(NOW) == 0
        assert [r.cache_name for r in await storage.list_page(None, 10, 0)] == ["c"]

    runner.run(scenario())


def test_check_succeeds_on_a_healthy_database(storage: Storage, runner: asyncio.Runner) -> None:
    """check() returns quietly when the database answers."""
    runner.run(storage.check())


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


def _second(storage: Storage, tmp_path: Path) -> Storage:
    """Another process's view of the same database."""
    if isinstance(storage, SqliteStorage):
        return SqliteStorage(storage.path)
    assert isinstance(storage, PostgresStorage)
    return PostgresStorage(storage.url)


def test_changes_made_elsewhere_are_reported(
    storage: Storage, runner: asyncio.Runner, tmp_path: Path
) -> None:
    """A write through another connection shows up in changes() within a second."""
    other = _second(storage, tmp_path)

    async def scenario() -> Changes:
        await storage.start()
        await storage.check()
        deadline = time.monotonic() + 5
        while storage.changes() is not NO_CHANGES or (
            isinstance(storage, PostgresStorage) and (not storage._listening)
        ):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        await other.purge("elsewhere/pool", "c", NOW, NOW + 100)
        started = time.monotonic()
        while (changes := storage.changes()) is NO_CHANGES:
            assert time.monotonic() - started < 1.0, "change not seen within 1 s"
            await asyncio.sleep(0.01)
        await other.close()
        return changes

    changes = runner.run(scenario())
    assert changes.everything or "elsewhere/pool" in changes.pools


def test_concurrent_expiry_deletes_each_row_once(
    storage: Storage, runner: asyncio.Runner, tmp_path: Path
) -> None:
    """Expiry run by several processes at once removes every expired row exactly once."""
    others = [_second(storage, tmp_path) for _ in range(3)]

    async def scenario() -> list[int | None]:
        for index in range(200):
            await storage.purge("exp/pool", f"c{index}", NOW - 10, NOW - 1)
        results = await asyncio.gather(*(s.expire(NOW) for s in [storage, *others]))
        for other in others:
            await other.close()
        return list(results)

    results = runner.run(scenario())
    assert sum(r or 0 for r in results) == 200
    assert runner.run(storage.list_page(None, 10, 0)) == []


def test_postgres_refuses_an_upstream_database(runner: asyncio.Runner) -> None:
    """A database holding upstream's cache_purges table is not taken over."""
    import psycopg

    url = pg.create_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE cache_purges (worker_pool_id text, cache_name text, "
            "before timestamptz, expires timestamptz)"
        )
    storage = PostgresStorage(url)
    with pytest.raises(SchemaError, match="purgecache db copy"):
        runner.run(storage.upgrade())
    runner.run(storage.close())


def test_postgres_newer_schema_is_refused(runner: asyncio.Runner) -> None:
    """A PostgreSQL database from a newer purgecache is not downgraded."""
    storage = PostgresStorage(pg.create_database())
    runner.run(storage.upgrade())

    async def bump() -> None:
        await storage._run(lambda c: c.execute("INSERT INTO purgecache_schema VALUES (999)"))

    runner.run(bump())
    with pytest.raises(SchemaTooNewError, match="refusing to downgrade"):
        runner.run(storage.upgrade())
    assert runner.run(storage.schema_version()) == 999
    runner.run(storage.close())


def test_migration_2_backfills_the_served_entry_exactly(
    storage: Storage, runner: asyncio.Runner, tmp_path: Path
) -> None:
    """Rows written before the `wire` column existed get the same JSON the service writes."""
    from purgecache.storage.base import wire_entry
    from purgecache.storage.migrations import migrations, statements

    kind = "sqlite" if isinstance(storage, SqliteStorage) else "postgres"
    names = ["plain", 'quote"back\\slash', "ünï €", "", "*", "x" * 300]
    befores = [0, 1, 999, 1_795_827_453_123, 1_577_836_800_000, 4_102_444_800_001]

    async def scenario() -> list[bytes]:
        legacy: SqliteStorage | PostgresStorage
        if isinstance(storage, SqliteStorage):
            legacy = SqliteStorage(tmp_path / "legacy.db")

            def make_v1(conn: sqlite3.Connection) -> None:
                for statement in statements(migrations("sqlite")[0][1]):
                    conn.execute(statement)
                conn.execute("PRAGMA user_version=1")
                for name, before in zip(names, befores, strict=True):
                    conn.execute(
                        "INSERT INTO cache_purges VALUES (?, ?, ?, ?)",
                        ("prov-1/wt_2", name, before, 2**60),
                    )

            await legacy._run(make_v1)
        else:
            legacy = PostgresStorage(pg.create_database())

            async def make_v1_postgres(conn: Any) -> None:
                for statement in statements(migrations("postgres")[0][1]):
                    await conn.execute(statement)
                await conn.execute("CREATE TABLE purgecache_schema (version integer)")
                await conn.execute("INSERT INTO purgecache_schema VALUES (1)")
                for name, before in zip(names, befores, strict=True):
                    await conn.execute(
                        "INSERT INTO cache_purges VALUES (%s, %s, %s, %s)",
                        ("prov-1/wt_2", name, before, 2**60),
                    )

            await legacy._run(make_v1_postgres)
        assert await legacy.upgrade() == 2
        rows = await legacy.list_wire(None, 100, 0)
        await legacy.close()
        return rows

    rows = runner.run(scenario())
    expected = {
        name: wire_entry("prov-1/wt_2", name, b) for name, b in zip(names, befores, strict=True)
    }
    assert len(rows) == len(names), kind
    for wire in rows:
        entry = json.loads(wire)
        assert (entry["provisionerId"], entry["workerType"]) == ("prov-1", "wt_2")
        assert entry == json.loads(expected[entry["cacheName"]])


def test_rows_without_a_stored_entry_are_still_listed(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """A row an older purgecache wrote during a rolling upgrade (wire NULL) is served too."""
    from purgecache.storage.base import wire_entry

    async def scenario() -> list[bytes]:
        if isinstance(storage, SqliteStorage):
            await storage._run(
                lambda c: c.execute(
                    "INSERT INTO cache_purges (worker_pool_id, cache_name, before, expires) "
                    "VALUES ('old/writer', 'c', ?, ?)",
                    (NOW, NOW + 100),
                )
            )
        else:
            assert isinstance(storage, PostgresStorage)
            await storage._run(
                lambda c: c.execute(
                    "INSERT INTO cache_purges (worker_pool_id, cache_name, before, expires) "
                    "VALUES ('old/writer', 'c', %s, %s)",
                    (NOW, NOW + 100),
                )
            )
        return await storage.list_wire(None, 10, NOW)

    (entry,) = runner.run(scenario())
    assert json.loads(entry) == json.loads(wire_entry("old/writer", "c", NOW))


def test_sqlite_writers_in_several_processes_lose_nothing(tmp_path: Path) -> None:
    """Four processes upserting into one SQLite file at once all succeed (WAL + busy timeout)."""
    import subprocess
    import sys

    path = tmp_path / "shared.db"
    asyncio.run(_upgrade_and_close(SqliteStorage(path)))
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from purgecache.storage import SqliteStorage\n"
        "async def main():\n"
        "    s = SqliteStorage(Path(sys.argv[1]))\n"
        "    await asyncio.gather(*(s.purge('multi/proc', f'{sys.argv[2]}-{i}', i, 2**50)\n"
        "                           for i in range(300)))\n"
        "    await s.close()\n"
        "asyncio.run(main())\n"
    )
    writers = [
        subprocess.Popen([sys.executable, "-c", script, str(path), f"w{n}"]) for n in range(4)
    ]
    assert [writer.wait(120) for writer in writers] == [0, 0, 0, 0]
    with sqlite3.connect(path) as conn:
        count = conn.execute("SELECT count(*) FROM cache_purges").fetchone()[0]
    assert count == 4 * 300


async def _upgrade_and_close(storage: SqliteStorage) -> None:
    await storage.upgrade()
    await storage.close()

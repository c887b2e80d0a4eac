"""The storage contract, run against every backend through its public methods; legacy
databases are made with the test's own connections."""

from __future__ import annotations

import asyncio
import importlib
import sqlite3
import time
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from purgecache.model import (
    CacheInventory,
    CacheReceipt,
    HistoryFilter,
    Provenance,
    PurgeEvent,
    PurgeRequest,
    WorkerReport,
)
from purgecache.storage import (
    NO_CHANGES,
    Changes,
    SchemaError,
    SqliteStorage,
    Storage,
    StorageError,
    StorageUnavailable,
)
from purgecache.storage.base import SchemaTooNewError
from purgecache.storage.migrations import migrations, statements
from purgecache.storage.postgres import PostgresStorage
from purgecache.storage.sqlite import LATEST_VERSION, connect, upgrade
from storage.conftest import BACKENDS, new_storage

import pg
from support.sqlite_files import sqlite_file

NOW = 1_900_000_000_000


def event_of(request: PurgeRequest, **origin: str) -> Provenance:
    """Where a purge came from (`purgeCache` unless `origin` says)."""
    return Provenance(**{"endpoint": "purgeCache", **origin})


async def keep(storage: Storage, request: PurgeRequest, entry: bytes) -> None:
    """Store a purge with a given entry, and its event."""
    await storage.purge(request, entry, event_of(request))


async def put(storage: Storage, pool: str, name: str, before: int, expires: int) -> None:
    """A purge as the service stores it: the request, its entry and its event."""
    request = PurgeRequest(pool, name, before, expires)
    await keep(storage, request, request.to_entry())


def test_upsert_keeps_one_row_and_moves_both_times(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """Purging a stored (pool, cache) again overwrites before and expires."""

    async def scenario() -> None:
        await put(storage, "p/w", "c", NOW, NOW + 10)
        await put(storage, "p/w", "c", NOW + 5, NOW + 20)
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
            *(put(storage, "p/w", f"c{i % 3}", NOW + i, NOW + 100 + i) for i in range(30)),
            put(storage, "q/w", "c0", NOW, NOW + 100),
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
        await put(storage, "p/w", "b", NOW, NOW + 100)
        await put(storage, "p/w", "a", NOW, NOW + 100)
        await put(storage, "p/w", "gone", NOW, NOW)
        await put(storage, "other/w", "x", NOW, NOW + 100)
        rows = await storage.purge_requests("p/w", NOW)
        assert [r.cache_name for r in rows] == ["a", "b"]

    runner.run(scenario())


def test_keyset_pages_in_code_point_order(storage: Storage, runner: asyncio.Runner) -> None:
    """list_page walks (pool, cache name) in code-point order from an exclusive cursor."""

    async def scenario() -> None:
        keys = [("a/b", "Z"), ("a/b", "a"), ("a/b", "é"), ("a-/b", "x"), ("A/b", "x")]
        for pool, name in keys:
            await put(storage, pool, name, NOW, NOW + 100)
        first = await storage.list_page(None, 2, NOW)
        rest = await storage.list_page((first[-1].worker_pool_id, first[-1].cache_name), 10, NOW)
        got = [(r.worker_pool_id, r.cache_name) for r in first + rest]
        assert got == sorted(keys)

    runner.run(scenario())


def test_expire_deletes_exactly_the_expired(storage: Storage, runner: asyncio.Runner) -> None:
    """expire(now) removes rows with expires <= now and reports how many."""

    async def scenario() -> None:
        await put(storage, "p/w", "a", NOW - 3, NOW - 2)
        await put(storage, "p/w", "b", NOW - 3, NOW)
        await put(storage, "p/w", "c", NOW - 3, NOW + 1)
        assert await storage.expire(NOW) == 2
        assert await storage.expire(NOW) == 0
        assert [r.cache_name for r in await storage.list_page(None, 10, 0)] == ["c"]

    runner.run(scenario())


def test_check_succeeds_on_a_healthy_database(storage: Storage, runner: asyncio.Runner) -> None:
    """check() returns quietly when the database answers."""
    runner.run(storage.check())


def test_check_fails_without_the_purge_table(storage: Storage, runner: asyncio.Runner) -> None:
    """check() raises StorageError when the database answers but lost its purge table."""
    drop = "DROP TABLE cache_purges"
    if isinstance(storage, SqliteStorage):
        with sqlite_file(storage.path) as db:
            db.execute(drop)
        db.close()
    else:
        assert isinstance(storage, PostgresStorage)
        with psycopg.connect(storage.url, autocommit=True) as conn:
            conn.execute(drop)
    with pytest.raises(StorageError) as failed:
        runner.run(storage.check())
    assert not isinstance(failed.value, StorageUnavailable)  # it answered: not an outage


def test_probe_succeeds_and_operations_go_on(storage: Storage, runner: asyncio.Runner) -> None:
    """probe() returns quietly when the database answers, and the storage works after it
    (on PostgreSQL with a pool made afresh)."""
    runner.run(put(storage, "p/w", "before", NOW, NOW + 10))
    runner.run(storage.probe())
    runner.run(put(storage, "p/w", "after", NOW, NOW + 10))
    names = [r.cache_name for r in runner.run(storage.purge_requests("p/w", NOW))]
    assert names == ["after", "before"]


def test_postgres_unreachable_is_unavailable(runner: asyncio.Runner) -> None:
    """A PostgreSQL nobody listens for is StorageUnavailable (an outage), from an operation
    after the pool timeout and from probe() at once."""
    from conftest import free_port

    storage = PostgresStorage(f"postgresql://postgres@127.0.0.1:{free_port()}/x", timeout=1.0)
    started = time.monotonic()
    with pytest.raises(StorageUnavailable):
        runner.run(storage.probe())
    assert time.monotonic() - started < 1.0
    with pytest.raises(StorageUnavailable):
        runner.run(storage.check())
    runner.run(storage.close())


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database from a newer purgecache is not downgraded."""
    with closing(connect(tmp_path / "new.db")) as conn:
        conn.execute(f"PRAGMA user_version={LATEST_VERSION + 1}")
        with pytest.raises(SchemaTooNewError, match="refusing to downgrade"):
            upgrade(conn)


def test_a_file_that_is_not_a_database_is_a_storage_error_and_leaves_nothing_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a file that is not SQLite's says which file and why, as a StorageError (serve
    prints it and exits 1), and closes the connection it had opened."""
    path = tmp_path / "notes.db"
    path.write_text("not a database, but 512 bytes of text\n" * 16)
    opened: list[sqlite3.Connection] = []
    real_connect = sqlite3.connect

    def tracked(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        opened.append(real_connect(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(sqlite3, "connect", tracked)
    with pytest.raises(
        StorageError, match=r"cannot open SQLite database .*notes\.db: file is not a database"
    ):
        connect(path)
    (conn,) = opened
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        conn.execute("SELECT 1")


def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    """Running the migrations twice leaves the schema at the latest version."""
    with closing(connect(tmp_path / "x.db")) as conn:
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
        while storage.changes() is not NO_CHANGES:  # PostgreSQL: until it listens
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        await put(other, "elsewhere/pool", "c", NOW, NOW + 100)
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
            await put(storage, "exp/pool", f"c{index}", NOW - 10, NOW - 1)
        results = await asyncio.gather(*(s.expire(NOW) for s in [storage, *others]))
        for other in others:
            await other.close()
        return list(results)

    results = runner.run(scenario())
    assert sum(r or 0 for r in results) == 200
    assert runner.run(storage.list_page(None, 10, 0)) == []


def test_postgres_refuses_an_upstream_database(runner: asyncio.Runner) -> None:
    """A database holding upstream's cache_purges table is not taken over."""

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

    with psycopg.connect(storage.url, autocommit=True) as conn:
        conn.execute("INSERT INTO purgecache_schema VALUES (999)")
    with pytest.raises(SchemaTooNewError, match="refusing to downgrade"):
        runner.run(storage.upgrade())
    assert runner.run(storage.schema_version()) == 999
    runner.run(storage.close())


def test_sqlite_writers_in_several_processes_lose_nothing(tmp_path: Path) -> None:
    """Four processes upserting into one SQLite file at once all succeed (WAL + busy timeout)."""
    import subprocess
    import sys

    path = tmp_path / "shared.db"
    asyncio.run(_upgrade_and_close(SqliteStorage(path)))
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from purgecache.model import Provenance, PurgeRequest\n"
        "def e(r):\n"
        "    return Provenance('x')\n"
        "from purgecache.storage import SqliteStorage\n"
        "async def main():\n"
        "    s = SqliteStorage(Path(sys.argv[1]))\n"
        "    rows = [PurgeRequest('multi/proc', f'{sys.argv[2]}-{i}', i, 2**50)\n"
        "            for i in range(300)]\n"
        "    await asyncio.gather(*(s.purge(r, r.to_entry(), e(r)) for r in rows))\n"
        "    await s.close()\n"
        "asyncio.run(main())\n"
    )
    writers = [
        subprocess.Popen([sys.executable, "-c", script, str(path), f"w{n}"]) for n in range(4)
    ]
    assert [writer.wait(120) for writer in writers] == [0, 0, 0, 0]
    with sqlite_file(path) as conn:
        count = conn.execute("SELECT count(*) FROM cache_purges").fetchone()[0]
    assert count == 4 * 300


async def _upgrade_and_close(storage: SqliteStorage) -> None:
    await storage.upgrade()
    await storage.close()


def test_entries_are_kept_as_opaque_bytes(storage: Storage, runner: asyncio.Runner) -> None:
    """list_entries gives back each row's entry byte for byte, whatever it says; a purge that
    moves `before` replaces it."""

    async def scenario() -> list[bytes]:
        request = PurgeRequest("p/w", "a", NOW, NOW + 100)
        await keep(storage, request, "not JSON at all: é ✓ {".encode())
        await keep(storage, PurgeRequest("p/w", "b", NOW, NOW + 100), b"second")
        await keep(storage, PurgeRequest("p/w", "b", NOW + 1, NOW + 100), b"third")
        return (await storage.list_entries(None, 10, NOW)).entries

    assert runner.run(scenario()) == ["not JSON at all: é ✓ {".encode(), b"third"]


def test_continuation_keys_come_from_the_rows(storage: Storage, runner: asyncio.Runner) -> None:
    """A page names its last row's key (read from the row, not from its entry) only when more
    rows follow; pages walked from those keys give every row once, in key order."""
    keys = [("a/b", "x"), ("a/b", "y/z"), ("a/c", ""), ("b/a", "é"), ("b/a", "ü")]

    async def scenario() -> list[tuple[list[bytes], tuple[str, str] | None]]:
        for index, (pool, name) in enumerate(keys):
            await keep(storage, PurgeRequest(pool, name, NOW, NOW + 100), b"%d" % index)
        await keep(storage, PurgeRequest("a/b", "expired", NOW, NOW), b"gone")
        pages, after = [], None
        while True:
            page = await storage.list_entries(after, 2, NOW)
            pages.append((page.entries, page.next_after))
            if page.next_after is None:
                return pages
            after = page.next_after

    assert runner.run(scenario()) == [
        ([b"0", b"1"], ("a/b", "y/z")),
        ([b"2", b"3"], ("b/a", "é")),
        ([b"4"], None),
    ]
    assert runner.run(storage.list_entries(None, 5, NOW)).next_after is None


def test_bulk_import_keeps_the_later_before_with_its_entry(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """put_many merges into existing rows: the later `before` with its entry, the later
    `expires`; new rows arrive as given."""

    async def scenario() -> tuple[list[PurgeRequest], list[bytes]]:
        await keep(storage, PurgeRequest("p/w", "a", NOW + 5, NOW + 10), b"a-stored")
        await keep(storage, PurgeRequest("p/w", "b", NOW, NOW + 10), b"b-stored")
        await storage.put_many(
            [
                (PurgeRequest("p/w", "a", NOW, NOW + 50), b"a-imported"),
                (PurgeRequest("p/w", "b", NOW + 5, NOW + 5), b"b-imported"),
                (PurgeRequest("p/w", "c", NOW, NOW + 10), b"c-imported"),
            ]
        )
        rows = await storage.purge_requests("p/w", NOW)
        return rows, (await storage.list_entries(None, 10, NOW)).entries

    rows, entries = runner.run(scenario())
    assert [(r.cache_name, r.before, r.expires) for r in rows] == [
        ("a", NOW + 5, NOW + 50),
        ("b", NOW + 5, NOW + 10),
        ("c", NOW, NOW + 10),
    ]
    assert entries == [b"a-stored", b"b-imported", b"c-imported"]


# What schema 2 left in `wire`: migration 2 built old rows' entries in SQL like this...
_SQL_ENTRY_2 = {
    "sqlite": """json_object(
        'provisionerId', substr(worker_pool_id, 1, instr(worker_pool_id, '/') - 1),
        'workerType', substr(worker_pool_id, instr(worker_pool_id, '/') + 1),
        'cacheName', cache_name,
        'before', strftime('%Y-%m-%dT%H:%M:%S', before / 1000, 'unixepoch')
            || printf('.%03dZ', before % 1000))""",
    "postgres": """json_build_object(
        'provisionerId', split_part(worker_pool_id, '/', 1),
        'workerType', split_part(worker_pool_id, '/', 2),
        'cacheName', cache_name,
        'before', to_char(to_timestamp(before / 1000) AT TIME ZONE 'UTC',
            'YYYY-MM-DD"T"HH24:MI:SS') || '.' || lpad((before % 1000)::text, 3, '0') || 'Z'
        )::text""",
}
# ...purgecache at schema 2 wrote entries as text made by Python, and a purgecache at schema 1
# still running during the upgrade wrote rows without one.
LEGACY = {
    "sql": [
        PurgeRequest("prov-1/wt_2", name, before, 2**60)
        for name, before in [
            ("plain", 0),
            ('quote"back\\slash', 1),
            ("ünï €", 999),
            ("", 1_795_827_453_123),
            ("tab\there\x01", 1_577_836_800_000),
            ("x" * 300, 4_102_444_800_001),
        ]
    ],
    "python": [PurgeRequest("a/b", f"py-{i}", NOW + i, 2**60) for i in range(3)],
    "none": [PurgeRequest("a/b", "no-entry", NOW, 2**60)],
}


def _schema_2_steps(backend: str, mark: str) -> list[tuple[str, list[Any]]]:
    """Statements (with the rows of an executemany) leaving a database as schema 2 did."""
    insert = f"INSERT INTO cache_purges VALUES ({', '.join([mark] * 5)})"
    return [
        *((sql, []) for m in migrations(backend)[:2] for sql in statements(m.sql)),
        (insert, [(*_columns(r), None) for r in LEGACY["sql"]]),
        (f"UPDATE cache_purges SET wire = {_SQL_ENTRY_2[backend]}", []),
        (insert, [(*_columns(r), r.to_entry().decode()) for r in LEGACY["python"]]),
        (insert, [(*_columns(r), None) for r in LEGACY["none"]]),
    ]


def _replay(
    target: sqlite3.Connection | psycopg.Cursor[Any], steps: list[tuple[str, list[Any]]]
) -> None:
    for sql, rows in steps:
        if rows:
            target.executemany(sql, rows)
        else:
            target.execute(sql)


def _sqlite_at_schema_2(path: Path) -> None:
    with sqlite_file(path, isolation_level=None) as db:
        _replay(db, _schema_2_steps("sqlite", "?"))
        db.execute("PRAGMA user_version=2")
    db.close()


def _postgres_at_schema_2(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cursor:
        _replay(cursor, _schema_2_steps("postgres", "%s"))
        cursor.execute("CREATE TABLE purgecache_schema (version integer)")
        cursor.execute("INSERT INTO purgecache_schema VALUES (1), (2)")


def _columns(request: PurgeRequest) -> tuple[str, str, int, int]:
    return (request.worker_pool_id, request.cache_name, request.before, request.expires)


def _stored_entries(backend: str, where: Path | str) -> list[bytes | None]:
    query = "SELECT wire FROM cache_purges ORDER BY worker_pool_id, cache_name"
    if backend == "sqlite":
        with sqlite_file(where) as db:
            found = db.execute(query).fetchall()
        db.close()
    else:
        with psycopg.connect(str(where)) as conn:
            found = conn.execute(query).fetchall()
    return [None if row[0] is None else str(row[0]).encode() for row in found]


@pytest.mark.parametrize("backend", BACKENDS)
def test_migration_3_makes_old_rows_list_as_fresh_ones_byte_for_byte(
    backend: str, tmp_path: Path, runner: asyncio.Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows as schema 2 left them (entries built in SQL, entries written by Python, no entry)
    list after the upgrade with exactly the bytes the same purges stored fresh list with,
    also when the rewrite takes several batches."""
    step = importlib.import_module(f"purgecache.storage.migrations.{backend}.0003_entries")
    monkeypatch.setattr(step, "BATCH", 2)
    requests = sorted(
        (r for rows in LEGACY.values() for r in rows),
        key=lambda r: (r.worker_pool_id, r.cache_name),
    )
    legacy = new_storage(backend, tmp_path / "legacy.db")
    if isinstance(legacy, SqliteStorage):
        where: Path | str = legacy.path
        _sqlite_at_schema_2(legacy.path)
    else:
        assert isinstance(legacy, PostgresStorage)
        where = legacy.url
        _postgres_at_schema_2(legacy.url)
    before_upgrade = _stored_entries(backend, where)
    fresh = new_storage(backend, tmp_path / "fresh.db")

    async def scenario() -> tuple[int, list[bytes], list[bytes]]:
        version = await legacy.upgrade()
        await fresh.upgrade()
        for request in requests:
            await keep(fresh, request, request.to_entry())
        migrated = await legacy.list_entries(None, 100, NOW)
        stored = await fresh.list_entries(None, 100, NOW)
        await legacy.close()
        await fresh.close()
        return version, migrated.entries, stored.entries

    version, migrated, stored = runner.run(scenario())
    assert version == migrations(backend)[-1].number
    assert len(stored) == len(requests)
    assert migrated == stored == [r.to_entry() for r in requests]
    assert None in before_upgrade
    if backend == "postgres":  # json_build_object's text has spaces: the bytes differed
        assert sum(e is not None and b'" : "' in e for e in before_upgrade) == len(LEGACY["sql"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_after_migration_3_every_row_must_have_an_entry(
    backend: str, tmp_path: Path, runner: asyncio.Runner
) -> None:
    """The schema refuses a row without an entry (as a purgecache of schema 1 would write)."""
    storage = new_storage(backend, tmp_path / "x.db")
    runner.run(storage.upgrade())
    runner.run(storage.close())
    insert = (
        "INSERT INTO cache_purges (worker_pool_id, cache_name, before, expires) "
        "VALUES ('old/writer', 'c', 1, 2)"
    )
    if isinstance(storage, SqliteStorage):
        with (
            sqlite_file(storage.path) as db,
            pytest.raises(sqlite3.IntegrityError, match="NOT NULL"),
        ):
            db.execute(insert)
    else:
        assert isinstance(storage, PostgresStorage)
        with (
            psycopg.connect(storage.url) as conn,
            pytest.raises(psycopg.errors.NotNullViolation),
        ):
            conn.execute(insert)


def test_postgres_upgrades_at_once_apply_each_migration_once(runner: asyncio.Runner) -> None:
    """Several processes upgrading one PostgreSQL database at once take turns (one lock over
    all the migrations): each migration is applied once and every one of them succeeds."""
    url = pg.create_database()
    storages = [PostgresStorage(url) for _ in range(4)]

    async def scenario() -> list[int]:
        versions = await asyncio.gather(*(s.upgrade() for s in storages))
        for s in storages:
            await s.close()
        return list(versions)

    latest = migrations("postgres")[-1].number
    assert runner.run(scenario()) == [latest] * 4
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT version FROM purgecache_schema ORDER BY 1").fetchall()
    assert [row[0] for row in rows] == list(range(1, latest + 1))


# ---- the purge history ------------------------------------------------------------------


def test_every_purge_is_an_event_with_its_provenance(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """Each purge adds one event, a re-purge of the same cache too (nothing is overwritten);
    every fact of its provenance comes back as it was stored, newest first."""
    origin = {
        "endpoint": "createPurge",
        "client_id": "alice",
        "source_ip": "192.0.2.7",
        "signed_spelling": "slash",
        "user_agent": "taskcluster-client/93",
        "reason": "corrupt after 'incident' ✓",
        "link": "https://bugs.example/1",
    }

    async def scenario() -> list[PurgeEvent]:
        first = PurgeRequest("p/w", "c", NOW, NOW + 10)
        await storage.purge(first, first.to_entry(), event_of(first))
        again = PurgeRequest("p/w", "c", NOW + 1, NOW + 11)
        await storage.purge(again, again.to_entry(), event_of(again, **origin))
        assert len(await storage.purge_requests("p/w", NOW)) == 1
        page = await storage.purge_history(HistoryFilter(), None, 10)
        assert page.total == 2 and page.next_after is None
        return page.events

    newest, oldest = runner.run(scenario())
    assert (newest.time, oldest.time) == (NOW + 1, NOW)
    assert newest.provenance == Provenance(**origin)
    assert oldest.provenance == Provenance("purgeCache")
    assert newest.event_id > oldest.event_id > 0


AWKWARD = 'q"uote b\\ack\nline\ttab \u2028 \u202e ünï 🧹 \x01 {"a": [1]} \\u0041 '


def test_awkward_text_comes_back_exactly(storage: Storage, runner: asyncio.Runner) -> None:
    """Quotes, backslashes, control and line-separator characters, bidi overrides, non-BMP
    characters and JSON-looking text in a cache name and every provenance field come back
    exactly, in the history, the pool's requests and the stored entry's bytes (a batch of
    them, written together, in the order given)."""
    names = [f"{AWKWARD}{i}" for i in range(5)]
    origin = Provenance("createPurge", AWKWARD, AWKWARD, AWKWARD, AWKWARD, AWKWARD, AWKWARD)

    async def scenario() -> tuple[list[PurgeEvent], list[PurgeRequest], list[bytes]]:
        requests = [PurgeRequest("p/w", name, NOW + i, NOW + 99) for i, name in enumerate(names)]
        await asyncio.gather(*(storage.purge(r, r.to_entry(), origin) for r in requests))
        page = await storage.purge_history(HistoryFilter(), None, 10)
        entries = await storage.list_entries(None, 10, NOW)
        return page.events, await storage.purge_requests("p/w", NOW), entries.entries

    events, stored, entries = runner.run(scenario())
    assert [e.cache_name for e in events] == names[::-1]
    assert {e.provenance for e in events} == {origin}
    assert [r.cache_name for r in stored] == sorted(names)
    assert entries == [r.to_entry() for r in sorted(stored, key=lambda r: r.cache_name)]


def test_purges_batched_together_each_keep_their_event(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """Purges sharing one group commit, several of one cache among them, each add an event."""

    async def scenario() -> int:
        await asyncio.gather(
            *(put(storage, "b/w", f"c{i % 3}", NOW + i, NOW + 99) for i in range(30))
        )
        return (await storage.purge_history(HistoryFilter("b/w"), None, 1)).total

    assert runner.run(scenario()) == 30


def test_history_filters_pages_and_totals(storage: Storage, runner: asyncio.Runner) -> None:
    """Filters (pool, cache, client, time range) combine; pages walk newest first from an
    exclusive (time, id) key without gaps or repeats; the total counts the whole filter."""

    async def scenario() -> None:
        for index in range(12):
            request = PurgeRequest(f"pool/{index % 2}", f"c{index % 3}", NOW + index, NOW + 99)
            client = {"client_id": "alice" if index < 6 else "bob"}
            await storage.purge(request, request.to_entry(), event_of(request, **client))
        # two events at the same time: the id orders them
        same = PurgeRequest("pool/0", "tie", NOW + 5, NOW + 99)
        await keep(storage, same, same.to_entry())

        async def walk(query: HistoryFilter, limit: int) -> list[tuple[int, str]]:
            seen, after = [], None
            while True:
                page = await storage.purge_history(query, after, limit)
                seen += [(e.time - NOW, e.cache_name) for e in page.events]
                after = page.next_after
                if after is None:
                    return seen

        everything = await walk(HistoryFilter(), 5)
        assert len(everything) == 13
        assert [t for t, _ in everything] == sorted((t for t, _ in everything), reverse=True)
        assert everything[6:8] == [(5, "tie"), (5, "c2")]  # same time: the later id first
        assert await walk(HistoryFilter("pool/1", "c0"), 1) == [(9, "c0"), (3, "c0")]
        bob = await walk(HistoryFilter(client_id="bob", since=NOW + 7, until=NOW + 10), 2)
        assert bob == [(9, "c0"), (8, "c2"), (7, "c1")]
        page = await storage.purge_history(HistoryFilter("pool/0"), None, 2)
        assert page.total == 7 and len(page.events) == 2
        assert (await storage.purge_history(HistoryFilter("none/such"), None, 2)).total == 0

    runner.run(scenario())


def test_history_is_pruned_by_age_apart_from_expiry(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """prune_history(before) deletes events older than `before` and leaves open requests;
    expire leaves the history."""

    async def scenario() -> None:
        await put(storage, "p/w", "old", NOW - 100, NOW + 100)
        await put(storage, "p/w", "new", NOW, NOW - 1)
        assert await storage.expire(NOW) == 1
        assert (await storage.purge_history(HistoryFilter(), None, 10)).total == 2
        assert await storage.prune_history(NOW - 50) == 1
        page = await storage.purge_history(HistoryFilter(), None, 10)
        assert [e.cache_name for e in page.events] == ["new"]
        assert [r.cache_name for r in await storage.purge_requests("p/w", NOW)] == ["old"]

    runner.run(scenario())


# ---- workers' receipts ------------------------------------------------------------------


def receipt(name: str, before: int, deleted: int = 1, in_use: int = 0) -> CacheReceipt:
    return CacheReceipt(name, before, deleted, deleted * 100, 5_000, 0, in_use)


def test_receipts_keep_the_newest_purge_and_replays_change_nothing(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """One row per worker and cache name: a later (or the same) `before` replaces it, an
    older receipt and a replayed report are ignored; a report without caches still counts."""

    async def scenario() -> list[tuple[str, str, CacheReceipt, int]]:
        first = WorkerReport("r/p", "local", "w1", (receipt("a", NOW, in_use=1), receipt("b", NOW)))
        await storage.report_worker_sync(first, NOW + 1)
        newer = WorkerReport("r/p", "local", "w1", (receipt("a", NOW, deleted=2),))
        await storage.report_worker_sync(newer, NOW + 2)
        stale = WorkerReport("r/p", "local", "w1", (receipt("b", NOW - 5, deleted=9),))
        await storage.report_worker_sync(stale, NOW + 3)
        await storage.report_worker_sync(newer, NOW + 4)  # a replay
        await asyncio.gather(
            *(
                storage.report_worker_sync(
                    WorkerReport("r/p", "g", f"w{i}", (receipt("a", NOW),)), NOW
                )
                for i in range(5)
            ),
            storage.report_worker_sync(WorkerReport("other/p", "local", "w1", ()), NOW),
        )
        return [
            (r.worker_group, r.worker_id, r.receipt, r.reported_at)
            for r in await storage.worker_receipts("r/p")
        ]

    rows = runner.run(scenario())
    assert rows[:5] == [("g", f"w{i}", receipt("a", NOW), NOW) for i in range(5)]
    assert rows[5:] == [
        ("local", "w1", receipt("a", NOW, deleted=2), NOW + 4),
        ("local", "w1", receipt("b", NOW), NOW + 1),
    ]


def test_a_report_with_an_inventory_replaces_the_workers_and_one_without_keeps_it(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """A worker's inventory is what its last report with one said (a cache it no longer
    holds goes); a report without an inventory, or another worker's, leaves it; in one batch
    the later report of a worker wins."""
    held = CacheInventory("a", 2, 4096, NOW)

    async def scenario() -> list[tuple[str, CacheInventory, int]]:
        first = (held, CacheInventory("b", 1, 0, None))
        await storage.report_worker_sync(WorkerReport("r/p", "local", "w1", (), first), NOW)
        await storage.report_worker_sync(WorkerReport("r/p", "local", "w1", (), (held,)), NOW + 1)
        await storage.report_worker_sync(WorkerReport("r/p", "local", "w1", ()), NOW + 2)
        await asyncio.gather(
            *(
                storage.report_worker_sync(
                    WorkerReport("r/p", "local", "w2", (), (replace(held, instances=i),)), NOW
                )
                for i in range(3)
            )
        )
        return [
            (r.worker_id, r.inventory, r.reported_at) for r in await storage.worker_inventory("r/p")
        ]

    assert runner.run(scenario()) == [
        ("w1", held, NOW + 1),
        ("w2", replace(held, instances=2), NOW),
    ]


def test_a_selector_purge_is_one_transaction_of_purges_events_and_the_selector(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """`purge_selector` stores every pair's request, its history event naming the selector,
    and the selector for agents; a re-applied selector moves its `before`; expiry removes
    it with the requests."""
    from purgecache.storage.selectors import StoredSelector

    async def scenario() -> None:
        origin = Provenance("createSelectorPurge", "admin", None, None, None, "why", None)
        origin = origin._replace(selector_pool_pattern="p-*/w", selector_cache_pattern="c*")
        rows = []
        for pool in ("p-1/w", "p-2/w"):
            request = PurgeRequest(pool, "ca", NOW, NOW + 10)
            rows.append((request, request.to_entry(), origin))
        await storage.purge_selector(StoredSelector("p-*/w", "c*", "p-", NOW, NOW + 10), rows)
        assert [r.cache_name for r in await storage.purge_requests("p-2/w", NOW)] == ["ca"]
        page = await storage.purge_history(HistoryFilter(), None, 10)
        assert {(e.worker_pool_id, e.provenance.selector_pool_pattern) for e in page.events} == {
            ("p-1/w", "p-*/w"),
            ("p-2/w", "p-*/w"),
        }
        assert await storage.pool_selectors("p-3/w", 0, NOW, 10) == [("p-*/w", "c*", NOW)]
        assert await storage.pool_selectors("q-1/w", 0, NOW, 10) == []  # prefix differs
        assert await storage.pool_selectors("p-3/w", NOW + 1, NOW, 10) == []  # since
        await storage.purge_selector(StoredSelector("p-*/w", "c*", "p-", NOW + 5, NOW + 20), [])
        assert await storage.pool_selectors("p-3/w", 0, NOW, 10) == [("p-*/w", "c*", NOW + 5)]
        await storage.expire(NOW + 20)
        assert await storage.pool_selectors("p-3/w", 0, NOW, 10) == []

    runner.run(scenario())


def test_selector_candidates_name_each_source_within_the_prefix(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """Inventory rows of workers active since the mark (one per worker), history and open
    requests, only of pools starting with the prefix."""
    from purgecache.storage.selectors import Candidate

    async def scenario() -> None:
        await put(storage, "pa/w", "open", NOW, NOW + 10)
        await put(storage, "pa/w", "gone", NOW - 20, NOW - 10)  # history only
        await put(storage, "qb/w", "other", NOW, NOW + 10)
        held = (CacheInventory("held", 1, 7, None),)
        await storage.report_worker_sync(WorkerReport("pa/w", "g", "w1", (), held), NOW)
        await storage.report_worker_sync(WorkerReport("pa/w", "g", "old", (), held), NOW - 100)
        found = await storage.selector_candidates("pa", NOW - 50, NOW, 100)
        assert sorted(found) == sorted(
            [
                Candidate("pa/w", "open", "history", None, 0),
                Candidate("pa/w", "open", "requests", None, 0),
                Candidate("pa/w", "gone", "history", None, 0),
                Candidate("pa/w", "held", "inventory", "g/w1", 7),
            ]
        )
        assert len(await storage.selector_candidates("", NOW - 50, NOW, 2)) == 2  # limit

    runner.run(scenario())

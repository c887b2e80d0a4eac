"""The benchmark's databases.

- `small`: exactly 1,000 open purge requests. One pool (`POOL`) holds exactly 5 of them, so
  `purgeRequests` answers about 817 bytes as in the upstream measurement; the other 995 sit in
  199 pools of 5. `allPurgeRequests?limit=1000` returns the whole table in one page.
- `big`: 1,000,000 open purge requests, 1,000 pools x 1,000 cache names, for the last-page test.

SQLite files are written directly with the sqlite3 module: the schema comes from the installed
purgecache package's own upgrade (every migration, as the service applies them), then rows are
inserted in key order in one transaction with the entries the service itself makes.
(PostgreSQL: see `databases.py`.)

Times are ms since the epoch; `before` is a few minutes ago, `expires` is far in the future.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from purgecache.model import PurgeRequest
from purgecache.storage import sqlite as sqlite_storage

try:  # `--compare` may seed for an older revision, whose storage made entries itself
    from purgecache.storage.base import wire_entry as _old_entry  # type: ignore[attr-defined]
except ImportError:
    _old_entry = None

POOL = "proj-bench/linux-large-2204"  # the pool purgeRequests is asked about
WRITE_POOL = "proj-bench/purge-target"  # purgeCache writes go here (sorts after POOL)
FAR_FUTURE_MS = 4_102_444_800_000  # 2100-01-01
POOL_CACHE_NAMES = (
    "gecko-level-3-checkouts-v3",
    "gecko-level-3-tooltool-cache-v1",
    "gecko-level-3-objdir-opt-linux64",
    "level-3-mozilla-central-hg-shared",
    "gecko-level-3-sccache-cache-v4",
)
SMALL_ROWS = 1000
Row = tuple[str, str, int, int]


def small_rows(now_ms: int) -> list[Row]:
    """The 1,000-row table, in key order."""
    rows = [
        (POOL, name, now_ms - 600_000 + index * 1_111, FAR_FUTURE_MS)
        for index, name in enumerate(POOL_CACHE_NAMES)
    ]
    for pool_index in range((SMALL_ROWS - len(rows)) // 5):
        pool = f"proj-{pool_index:03d}/workers-{pool_index % 7}"
        rows += [
            (pool, f"cache-{cache:02d}-checkouts", now_ms - 500_000 + cache, FAR_FUTURE_MS)
            for cache in range(5)
        ]
    assert len(rows) == SMALL_ROWS
    return sorted(rows)


def big_rows(now_ms: int, pools: int = 1000, per_pool: int = 1000) -> Iterator[Row]:
    """`pools` x `per_pool` rows, in key order."""
    for pool_index in range(pools):
        pool = f"big-{pool_index:04d}/workers"
        for cache in range(per_pool):
            yield (pool, f"cache-{cache:05d}", now_ms - 300_000 + cache, FAR_FUTURE_MS)


def seed_sqlite(path: Path, rows: Iterable[Row]) -> int:
    """A new SQLite file holding `rows`; returns how many."""
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        sqlite_storage.upgrade(conn)
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO cache_purges (worker_pool_id, cache_name, before, expires, wire) "
            "VALUES (?, ?, ?, ?, ?)",
            with_wire(rows),
        )
        conn.execute("COMMIT")
        count: int = conn.execute("SELECT count(*) FROM cache_purges").fetchone()[0]
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return count


def with_wire(rows: Iterable[Row]) -> Iterator[tuple[str, str, int, int, bytes | str]]:
    """Each row plus the entry the service stores with it (made by the service's own code)."""
    for pool, name, before, expires in rows:
        if _old_entry is not None:
            yield pool, name, before, expires, _old_entry(pool, name, before)  # text, as it was
        else:
            yield pool, name, before, expires, PurgeRequest(pool, name, before, expires).to_entry()


def now_ms() -> int:
    """The wall clock in ms."""
    return time.time_ns() // 1_000_000

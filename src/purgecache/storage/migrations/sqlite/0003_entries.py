"""Migration 3: every row's entry made again by `PurgeRequest.to_entry` (the code that makes
new rows' entries), so rows from before migration 2 list with the same bytes as new ones; the
table is rebuilt so that `wire` is a BLOB that may not be missing.

Runs inside the upgrade's write transaction; rows move in batches so memory stays bounded.
"""

from __future__ import annotations

import sqlite3

from purgecache.model import PurgeRequest

BATCH = 5000

_TABLE = """CREATE TABLE cache_purges_entries (
    worker_pool_id TEXT NOT NULL,
    cache_name TEXT NOT NULL,
    before INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    wire BLOB NOT NULL,
    PRIMARY KEY (worker_pool_id, cache_name)
) WITHOUT ROWID"""
_INSERT = "INSERT INTO cache_purges_entries VALUES (?, ?, ?, ?, ?)"


def migrate(conn: sqlite3.Connection) -> None:
    """Copy every row with a fresh entry into a new table that replaces the old one."""
    conn.execute(_TABLE)
    rows = conn.execute("SELECT worker_pool_id, cache_name, before, expires FROM cache_purges")
    while batch := rows.fetchmany(BATCH):
        conn.executemany(_INSERT, [(*row, PurgeRequest(*row).to_entry()) for row in batch])
    conn.execute("DROP TABLE cache_purges")
    conn.execute("ALTER TABLE cache_purges_entries RENAME TO cache_purges")
    conn.execute("CREATE INDEX cache_purges_expires ON cache_purges (expires)")

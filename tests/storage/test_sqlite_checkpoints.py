"""A serving SQLite storage checkpoints its write-ahead log in the background: what it commits
reaches the database file itself within a fraction of a second, without the writer's commits
doing that copy (which stalled every purge waiting for them)."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

from purgecache.model import Provenance, PurgeRequest
from purgecache.storage import SqliteStorage, sqlite

from support.sqlite_files import sqlite_file

NOW = 1_795_000_000_000


def rows_in_the_file_alone(db: Path, copy: Path) -> int:
    """The purge requests the database file holds without its WAL (a copy of the file only);
    0 when not even the schema is in it yet, or when the copy caught a checkpoint halfway
    through writing the file (SQLite finds it malformed: a torn copy, not a torn file)."""
    shutil.copyfile(db, copy)
    try:
        with sqlite_file(copy) as conn:
            return int(conn.execute("SELECT count(*) FROM cache_purges").fetchone()[0])
    except sqlite3.DatabaseError:
        return 0


def test_commits_reach_the_database_file_in_the_background(tmp_path: Path) -> None:
    """Purges far below SQLite's own checkpoint threshold (which would leave them in the WAL)
    are in the database file within a second once the storage is started (serving)."""
    db = tmp_path / "db.sqlite"

    async def scenario() -> None:
        storage = SqliteStorage(db)
        await storage.upgrade()
        await storage.start()
        for name in ("a", "b", "c"):
            request = PurgeRequest("pool/x", name, NOW, NOW + 1000)
            await storage.purge(request, request.to_entry(), Provenance("purgeCache"))
        found = 0
        for _ in range(40):
            await asyncio.sleep(sqlite.CHECKPOINT_INTERVAL / 2)
            found = rows_in_the_file_alone(db, tmp_path / "later.sqlite")
            if found == 3:
                break
        assert found == 3
        assert [r.cache_name for r in await storage.purge_requests("pool/x", NOW)] == [
            "a",
            "b",
            "c",
        ]
        await storage.close()

    asyncio.run(scenario())


def test_the_writer_leaves_checkpoints_to_the_background(tmp_path: Path) -> None:
    """Started, the writer's connection checkpoints by itself only far beyond SQLite's
    default of 1,000 pages (a last resort should the background one fall behind)."""

    async def scenario() -> None:
        storage = SqliteStorage(tmp_path / "db.sqlite")
        await storage.upgrade()
        await storage.start()
        pages = await storage._run(lambda c: c.execute("PRAGMA wal_autocheckpoint").fetchone())
        assert pages == (sqlite.WRITER_CHECKPOINT_PAGES,)
        await storage.close()

    asyncio.run(scenario())

"""`purgecache db backup`: a consistent copy of a live SQLite database, taken with SQLite's
online backup API while `serve` keeps writing.

The copy is one self-contained file (rollback journal, no `-wal` beside it), written under a
temporary name, synced and then renamed, so a target that exists is always whole. PostgreSQL
databases are backed up with `pg_dump` (see docs/upgrade.md).
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

from purgecache.storage.base import StorageError


def backup_sqlite(source: Path, target: Path) -> int:
    """Copy the purgecache database at `source` to the new file `target`; its schema version."""
    if not source.is_file():
        raise StorageError(f"no database at {source}")
    if target.exists():
        raise StorageError(f"{target} exists already: back up to a new file")
    partial = target.with_name(f".{target.name}.partial")
    try:
        version = _copy(source, partial)
        _sync(partial)
        partial.rename(target)
    except (sqlite3.Error, OSError) as error:
        raise StorageError(f"backup of {source} to {target} failed: {error}") from error
    finally:
        partial.unlink(missing_ok=True)
    return version


def _copy(source: Path, target: Path) -> int:
    with closing(sqlite3.connect(source)) as live, closing(sqlite3.connect(target)) as copy:
        live.backup(copy)
        version = int(copy.execute("PRAGMA user_version").fetchone()[0])
        if version == 0:
            raise StorageError(f"{source} is not a purgecache database (no schema)")
        copy.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal to carry along
    return version


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

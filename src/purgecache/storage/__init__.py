"""Storage backends behind one interface; `open_storage` picks one from a database URL."""

from __future__ import annotations

from purgecache.storage.base import SchemaTooNewError, Storage, StorageError
from purgecache.storage.sqlite import SqliteStorage, sqlite_path

__all__ = ["SchemaTooNewError", "SqliteStorage", "Storage", "StorageError", "open_storage"]


def open_storage(url: str, *, sqlite_synchronous: str = "NORMAL") -> SqliteStorage:
    """The storage for a database URL (`sqlite:///...`)."""
    if url.startswith("sqlite:"):
        return SqliteStorage(sqlite_path(url), sqlite_synchronous)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path.db")

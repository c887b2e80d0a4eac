"""Storage backends behind one interface; `open_storage` picks one from a database URL."""

from __future__ import annotations

from purgecache.storage.base import (
    NO_CHANGES,
    Changes,
    EntryPage,
    SchemaError,
    SchemaTooNewError,
    Storage,
    StorageError,
    StorageUnavailable,
)
from purgecache.storage.history import HistoryPage
from purgecache.storage.sqlite import SqliteStorage, sqlite_path

__all__ = [
    "NO_CHANGES",
    "Changes",
    "EntryPage",
    "HistoryPage",
    "SchemaError",
    "SchemaTooNewError",
    "SqliteStorage",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "open_storage",
]

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_storage(url: str, *, sqlite_synchronous: str = "NORMAL", listen_url: str = "") -> Storage:
    """The storage for a database URL: `sqlite:///path.db` or `postgresql://...` (with
    `listen_url`, a direct connection beside a transaction pooler's `url`)."""
    if url.startswith("sqlite:"):
        return SqliteStorage(sqlite_path(url), sqlite_synchronous)
    if url.startswith(POSTGRES_SCHEMES):
        from purgecache.storage.postgres import PostgresStorage

        return PostgresStorage(url, listen_url=listen_url)
    raise ValueError(
        f"unsupported database URL {url!r}: use sqlite:///path.db or postgresql://user@host/db"
    )

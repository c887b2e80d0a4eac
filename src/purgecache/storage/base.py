"""The storage interface every backend implements, and its errors."""

from __future__ import annotations

from typing import Protocol

from purgecache.model import PurgeRequest


class StorageError(Exception):
    """The database could not do what was asked (unreachable, locked, corrupt...)."""


class SchemaTooNewError(StorageError):
    """The database was written by a newer purgecache: refuse to downgrade it."""


class Storage(Protocol):
    """Where purge requests live. Every method is safe to call from one event loop."""

    async def purge(self, worker_pool_id: str, cache_name: str, before: int, expires: int) -> None:
        """Insert the request or move `before`/`expires` of the existing one; durable on return."""

    async def purge_requests(self, worker_pool_id: str, now: int) -> list[PurgeRequest]:
        """Unexpired requests of one pool, ordered by cache name (code-point order)."""

    async def list_page(
        self, after: tuple[str, str] | None, limit: int, now: int
    ) -> list[PurgeRequest]:
        """Up to `limit` unexpired requests strictly after the key `after`, in key order."""

    async def expire(self, now: int) -> int:
        """Delete requests whose `expires` is at or before `now`; return how many went."""

    async def check(self) -> None:
        """Raise StorageError unless the database answers a trivial query."""

    async def close(self) -> None:
        """Release connections and threads."""

"""The storage interface every backend implements, and its errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from purgecache.model import PurgeRequest


def wire_entry(worker_pool_id: str, cache_name: str, before: int) -> str:
    """A request's entry as the API serves it (JSON), stored with the row at write time."""
    return orjson.dumps(PurgeRequest(worker_pool_id, cache_name, before, 0).to_wire()).decode()


class StorageError(Exception):
    """The database could not do what was asked (unreachable, locked, corrupt...)."""


class SchemaError(StorageError):
    """The database schema cannot be used by this purgecache (too new, or not ours)."""


class SchemaTooNewError(SchemaError):
    """The database was written by a newer purgecache: refuse to downgrade it."""


@dataclass(frozen=True)
class Changes:
    """What other processes changed since the last look: some pools, or possibly everything."""

    everything: bool = False
    pools: frozenset[str] = field(default_factory=frozenset)


NO_CHANGES = Changes()
EVERYTHING = Changes(everything=True)


class Storage(Protocol):
    """Where purge requests live. Every method is safe to call from one event loop."""

    async def upgrade(self) -> int:
        """Apply missing migrations (never downgrading); return the schema version."""

    async def schema_version(self) -> int:
        """The schema version the database is at (0 for an empty database)."""

    async def start(self) -> None:
        """Begin background work (change notifications) inside a running event loop."""

    def changes(self) -> Changes:
        """Changes made by any process since the previous call; cheap, no I/O round trip.

        Returns the NO_CHANGES object itself when nothing changed.
        """

    async def purge(self, worker_pool_id: str, cache_name: str, before: int, expires: int) -> None:
        """Insert the request or move `before`/`expires` of the existing one; durable on return."""

    async def put_many(self, rows: Sequence[PurgeRequest]) -> None:
        """Store rows in one transaction (bulk import); an existing row keeps the later
        `before` and the later `expires` of the two."""

    async def purge_requests(self, worker_pool_id: str, now: int) -> list[PurgeRequest]:
        """Unexpired requests of one pool, ordered by cache name (code-point order)."""

    async def list_page(
        self, after: tuple[str, str] | None, limit: int, now: int
    ) -> list[PurgeRequest]:
        """Up to `limit` unexpired requests strictly after the key `after`, in key order."""

    async def list_wire(self, after: tuple[str, str] | None, limit: int, now: int) -> list[bytes]:
        """Like list_page, as each entry's JSON exactly as served (UTF-8), ready to join."""

    async def expire(self, now: int) -> int | None:
        """Delete requests whose `expires` is at or before `now`; return how many went, or None
        when another process is expiring right now (only one runs at a time)."""

    async def count_open(self, now: int) -> int:
        """How many unexpired purge requests there are."""

    async def check(self) -> None:
        """Raise StorageError unless the database answers a trivial query."""

    async def close(self) -> None:
        """Release connections and threads."""

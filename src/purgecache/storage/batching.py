"""Group commit: purges that arrive while a transaction is being committed share the next one.

Each caller still waits until its own row is committed, so a 204 always means durable; under
load many purges share one commit (one WAL append on SQLite, one round trip and fsync on
PostgreSQL), and an idle service commits each purge at once, with no added delay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Row = TypeVar("Row")


class WriteBatcher(Generic[Row]):
    """Feeds rows to `write_many` in batches; `write` returns once its batch is committed."""

    def __init__(self, write_many: Callable[[list[Row]], Awaitable[None]], max_batch: int = 500):
        self._write_many = write_many
        self._max_batch = max_batch
        self._pending: list[tuple[Row, asyncio.Future[None]]] = []
        self._flushing = False

    async def write(self, row: Row) -> None:
        """Store one row durably (sharing a transaction with rows queued meanwhile)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((row, done))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        await done

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                try:
                    await self._write_many([row for row, _ in batch])
                except Exception as error:  # every waiter of the batch gets the failure
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(error)
                else:
                    for _, done in batch:
                        if not done.done():
                            done.set_result(None)
        finally:
            self._flushing = False

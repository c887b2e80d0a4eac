"""Fetches noted in memory on the `purgeRequests` hot path and written in batches.

Noting a fetch is a dict lookup (and a store only when the newest `before` served to that
client id grows, or the client id is new this interval): no I/O, no allocation in the common
case. `drain` hands the rows of one interval to one write; rows that could not be written are
noted again (`restore`), so a failed flush is retried with the next one.
"""

from __future__ import annotations

from purgecache.storage.fetches import FetchRow

MAX_NOTED = 100_000  # (pool, client id) pairs kept between flushes; more are dropped


class FetchLog:
    """Per pool and client id, the newest `before` served since the last drain."""

    def __init__(self) -> None:
        self._pools: dict[str, dict[str, int]] = {}
        self._reporters: set[tuple[str, str]] = set()
        self._noted = 0

    def note(self, worker_pool_id: str, client_id: str, newest_before: int) -> None:
        """A `purgeRequests` answer whose newest `before` is `newest_before` was served."""
        served = self._pools.get(worker_pool_id)
        if served is None:
            served = self._pools[worker_pool_id] = {}
        if served.get(client_id, -1) < newest_before:
            if client_id not in served:
                if self._noted >= MAX_NOTED:
                    return
                self._noted += 1
            served[client_id] = newest_before

    def note_reporter(self, worker_pool_id: str, client_id: str) -> None:
        """`client_id` reported workers' receipts for the pool (counted by its receipts)."""
        self._reporters.add((worker_pool_id, client_id))

    def drain(self, now: int) -> list[FetchRow]:
        """Every row noted since the last drain, seen at `now`; the log starts empty again."""
        pools, reporters = self._pools, self._reporters
        self._pools, self._reporters, self._noted = {}, set(), 0
        rows = [
            (pool, client, newest, now, int((pool, client) in reporters))
            for pool, served in pools.items()
            for client, newest in served.items()
        ]
        rows.extend((pool, client, -1, now, 1) for pool, client in reporters - _keys(pools))
        return rows

    def restore(self, rows: list[FetchRow]) -> None:
        """Note again rows a flush could not write."""
        for pool, client, newest, _, reports in rows:
            if newest >= 0:
                self.note(pool, client, newest)
            if reports:
                self.note_reporter(pool, client)


def _keys(pools: dict[str, dict[str, int]]) -> set[tuple[str, str]]:
    return {(pool, client) for pool, served in pools.items() for client in served}

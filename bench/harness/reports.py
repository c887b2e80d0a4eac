"""Bodies for `reportWorkerSync`: what a fleet of agents sends after syncing.

Worker `bench/w<NNNNN>` (`workers` of them, taken in turn) reports a receipt and an inventory
entry for each cache name of the pool, as the agent does after a sync that deleted one copy of
each. Every pass through the fleet honours a `before` 1 ms newer than the last, so each report
replaces its worker's receipts (a real write, never an ignored replay)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Sequence

from harness.seed import POOL, POOL_CACHE_NAMES
from purgecache.model import format_time
from purgecache.storage import open_storage

WORKER_GROUP = "bench"
REPORT_WORKERS = 10_000  # distinct workers reporting in turn (issue 13's scale)
COPY_BYTES = 734_003_200  # 700 MiB: a checkout-sized cache copy


def worker_id(index: int) -> str:
    return f"w{index:05d}"


class ReportBodies:
    """JSON bodies of `workers` distinct workers' reports, in turn; see the module doc."""

    def __init__(
        self, workers: int, honoured_ms: int, cache_names: Sequence[str] = POOL_CACHE_NAMES
    ) -> None:
        self.workers = workers
        self.honoured_ms = honoured_ms
        self.cache_names = tuple(cache_names)
        self._counter = itertools.count()

    def __call__(self) -> str:
        index = next(self._counter)
        honoured = format_time(self.honoured_ms + index // self.workers)
        return json.dumps(
            self.body(worker_id(index % self.workers), honoured), separators=(",", ":")
        )

    def body(self, worker: str, honoured: str) -> dict[str, object]:
        receipts = [
            {
                "cacheName": name,
                "honouredBefore": honoured,
                "instancesDeleted": 1,
                "bytesFreed": COPY_BYTES,
                "oldestDeletedAgeMs": 86_400_000,
                "failures": 0,
                "inUse": 0,
            }
            for name in self.cache_names
        ]
        inventory = [
            {"cacheName": name, "instances": 1, "bytes": COPY_BYTES, "lastUsed": honoured}
            for name in self.cache_names
        ]
        return {
            "workerGroup": WORKER_GROUP,
            "workerId": worker,
            "caches": receipts,
            "inventory": inventory,
        }


def stored_workers(db_url: str) -> tuple[int, int]:
    """(distinct workers, receipts) the database holds for the bench pool."""

    async def read() -> tuple[int, int]:
        storage = open_storage(db_url)
        try:
            receipts = await storage.worker_receipts(POOL)
        finally:
            await storage.close()
        return len({(r.worker_group, r.worker_id) for r in receipts}), len(receipts)

    return asyncio.run(read())

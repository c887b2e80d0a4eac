"""What a worker tells the service after a sync (`reportWorkerSync`): per cache name, the
newest purge it honoured and what that took (its receipt), and what it holds (its inventory).

Everything comes from the registry's records: the tally each cache keeps of the instances its
latest purge withdrew, and the size each instance was measured at when last released. No cache
tree is walked here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import TypeVar

from purgecache.agent.records import InstanceRecord
from purgecache.agent.registry import CacheRegistry, CacheStock

T = TypeVar("T", "Receipt", "Held")


@dataclass(frozen=True, slots=True)
class Receipt:
    """What honouring one cache's latest purge took on this worker."""

    cache_name: str
    honoured_before: int  # ms, service clock
    deleted: int
    bytes_freed: int
    oldest_deleted_age_ms: int | None
    failures: int  # withdrawn but not removed yet, or purged but not withdrawn (retried)
    in_use: int  # held by a task: deleted on release


@dataclass(frozen=True, slots=True)
class Held:
    """What this worker holds of one cache."""

    cache_name: str
    instances: int
    bytes: int  # as measured at each instance's last release
    last_used: int | None  # ms, worker clock


@dataclass(frozen=True, slots=True)
class Stock:
    """A worker's receipts and inventory."""

    receipts: tuple[Receipt, ...]
    held: tuple[Held, ...]

    def digest(self) -> str:
        """Identifies the receipts: a report is due when they change (the inventory's last
        use changes with every task, so it waits for the interval)."""
        text = json.dumps([asdict(r) for r in self.receipts], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]


# What one report may carry: the service takes 500 entries of each kind and 64 KiB of body.
MAX_ENTRIES = 500
BODY_BUDGET = 56 * 1024
ENTRY_OVERHEAD = 200  # bytes of JSON around a cache name in a receipt or inventory entry


def take_stock(registry: CacheRegistry) -> Stock:
    """The registry's receipts (caches with a purge) and inventory (every cache), within
    what one report may carry: the newest purges first, then the most recently used caches
    (a worker with more caches than that leaves the rest out of its reports)."""
    stocks = registry.stock()
    receipts = sorted(
        (r for r in (_receipt(s) for s in stocks) if r is not None),
        key=lambda r: (-r.honoured_before, r.cache_name),
    )
    held = sorted((_held(s) for s in stocks), key=lambda h: (-(h.last_used or 0), h.cache_name))
    budget = BODY_BUDGET
    kept_receipts = _within(receipts, budget)
    budget -= sum(_weight(r.cache_name) for r in kept_receipts)
    return Stock(tuple(kept_receipts), tuple(_within(held, budget)))


def _weight(cache_name: str) -> int:
    """An entry's share of the body, at most (the name as ASCII-only JSON is never shorter
    than its UTF-8 JSON)."""
    return ENTRY_OVERHEAD + len(json.dumps(cache_name))


def _within(entries: list[T], budget: int) -> list[T]:
    """The first entries that fit in `budget` bytes and MAX_ENTRIES."""
    kept: list[T] = []
    for entry in entries[:MAX_ENTRIES]:
        budget -= _weight(entry.cache_name)
        if budget < 0:
            break
        kept.append(entry)
    return kept


def _receipt(stock: CacheStock) -> Receipt | None:
    record = stock.record
    if record.purged_before is None:
        return None
    stale = [i for i in stock.instances if i is None or i.doomed or i.stale(record)]
    in_use = sum(1 for i in stale if i is not None and i.lease is not None)
    failures = stock.in_trash + len(stale) - in_use
    tally = record.tally
    return Receipt(
        record.cache_name,
        record.purged_before,
        tally.deleted,
        tally.bytes_freed,
        tally.oldest_deleted_age_ms,
        failures,
        in_use,
    )


def _held(stock: CacheStock) -> Held:
    usable = [i for i in stock.instances if i is not None and not _withdrawn(i, stock)]
    last = max((i.last_used for i in usable), default=0)
    size = sum(i.size_bytes or 0 for i in usable)
    return Held(stock.record.cache_name, len(usable), size, last or None)


def _withdrawn(instance: InstanceRecord, stock: CacheStock) -> bool:
    return instance.doomed or instance.stale(stock.record)

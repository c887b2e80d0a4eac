"""The purge-request cache of the hot path, with a fake storage that counts its calls."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from purgecache.model import Provenance, PurgeRequest
from purgecache.service import PurgeService
from purgecache.storage import NO_CHANGES, Changes, EntryPage, StorageError
from purgecache.storage.base import EVERYTHING


class FakeStorage:
    """In-memory storage that counts pool reads and can be told to fail."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], PurgeRequest] = {}
        self.entries: dict[tuple[str, str], bytes] = {}
        self.pool_reads = 0
        self.fail_next = 0
        self.pending = NO_CHANGES
        self.calls: list[str] = []
        self.down = False

    def changes(self) -> Changes:
        pending, self.pending = self.pending, NO_CHANGES
        return pending

    async def purge(self, request: PurgeRequest, entry: bytes, origin: Provenance) -> None:
        key = (request.worker_pool_id, request.cache_name)
        self.rows[key], self.entries[key] = request, entry

    async def list_entries(self, after: tuple[str, str] | None, limit: int, now: int) -> EntryPage:
        keys = sorted(
            k for k, r in self.rows.items() if r.expires > now and (not after or k > after)
        )
        return EntryPage(
            [self.entries[k] for k in keys[:limit]], keys[limit - 1] if len(keys) > limit else None
        )

    async def start(self) -> None:
        self.calls.append("start")

    async def check(self) -> None:
        self.calls.append("check")
        if self.down:
            raise StorageError("database down")

    async def count_open(self, now: int) -> int:
        self.calls.append(f"count_open {now}")
        return sum(r.expires > now for r in self.rows.values())

    async def close(self) -> None:
        self.calls.append("close")

    async def purge_requests(self, pool: str, now: int) -> list[PurgeRequest]:
        self.pool_reads += 1
        if self.fail_next:
            self.fail_next -= 1
            raise StorageError("database down")
        return sorted(
            (r for r in self.rows.values() if r.worker_pool_id == pool and r.expires > now),
            key=lambda r: r.cache_name,
        )


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000_000

    def __call__(self) -> int:
        return self.now


def make(**kwargs: int) -> tuple[PurgeService, FakeStorage, Clock]:
    storage, clock = FakeStorage(), Clock()
    options = {"retention_ms": 86_400_000, "cache_time_ms": 10_000, **kwargs}
    return PurgeService(storage, clock=clock, **options), storage, clock  # type: ignore[arg-type]


def requests_of(body: bytes) -> list[str]:
    return [entry["cacheName"] for entry in orjson.loads(body)["requests"]]


def test_repeated_reads_hit_storage_once_within_cache_time() -> None:
    """Four reads of one pool within cache time cost one storage read."""
    service, storage, clock = make()
    for _ in range(4):
        asyncio.run(service.purge_requests_json("pp/wt", clock.now - 3_600_000))
    assert storage.pool_reads == 1
    clock.now += 10_001
    asyncio.run(service.purge_requests_json("pp/wt", None))
    assert storage.pool_reads == 2


def test_failed_read_is_not_cached() -> None:
    """A storage failure fails that request only; the next one reads storage again."""
    service, storage, _ = make()
    storage.fail_next = 1
    with pytest.raises(StorageError):
        asyncio.run(service.purge_requests_json("pp/wt", None))
    assert asyncio.run(service.purge_requests_json("pp/wt", None)) == b'{"requests":[]}'
    assert storage.pool_reads == 2


def test_own_purge_invalidates_the_pool_entry() -> None:
    """A purge through the service is visible in its next answer despite the cache."""
    service, _, _ = make()
    assert requests_of(asyncio.run(service.purge_requests_json("p/w", None))) == []
    asyncio.run(service.purge("p/w", "c"))
    assert requests_of(asyncio.run(service.purge_requests_json("p/w", None))) == ["c"]


def test_cache_is_bounded_least_recently_used_first() -> None:
    """Reading more pools than the bound evicts the least recently used one."""
    service, storage, _ = make(cache_max_pools=2)
    for pool in ("a/a", "b/b", "a/a", "c/c"):
        asyncio.run(service.purge_requests_json(pool, None))
    reads = storage.pool_reads
    asyncio.run(service.purge_requests_json("a/a", None))  # still cached
    assert storage.pool_reads == reads
    asyncio.run(service.purge_requests_json("b/b", None))  # evicted
    assert storage.pool_reads == reads + 1


def test_since_filters_inclusively_from_cache() -> None:
    """The since filter runs on cached rows: before >= since."""
    service, _, clock = make()
    asyncio.run(service.purge("p/w", "old"))
    first = clock.now
    clock.now += 50
    asyncio.run(service.purge("p/w", "new"))
    assert requests_of(asyncio.run(service.purge_requests_json("p/w", first))) == ["new", "old"]
    assert requests_of(asyncio.run(service.purge_requests_json("p/w", first + 1))) == ["new"]


def test_cached_rows_disappear_when_they_expire() -> None:
    """An entry cached before a row's expiry is refreshed once that row expires."""
    service, _, clock = make(retention_ms=1_000, cache_time_ms=60_000)
    asyncio.run(service.purge("p/w", "c"))
    assert requests_of(asyncio.run(service.purge_requests_json("p/w", None))) == ["c"]
    clock.now += 1_000
    assert requests_of(asyncio.run(service.purge_requests_json("p/w", None))) == []


def test_changes_by_other_processes_force_a_reread_of_that_pool() -> None:
    """A pool another process changed is read again; other pools stay cached."""
    service, storage, _ = make(cache_time_ms=300_000)
    for pool in ("a/a", "b/b"):
        asyncio.run(service.purge_requests_json(pool, None))
    storage.rows[("a/a", "x")] = PurgeRequest("a/a", "x", 1, 2**62)
    storage.pending = Changes(pools=frozenset({"a/a"}))
    assert requests_of(asyncio.run(service.purge_requests_json("a/a", None))) == ["x"]
    reads = storage.pool_reads
    asyncio.run(service.purge_requests_json("b/b", None))
    assert storage.pool_reads == reads


def test_change_of_everything_rereads_every_pool() -> None:
    """When any pool may have changed (e.g. another SQLite process wrote), all are re-read."""
    service, storage, _ = make(cache_time_ms=300_000)
    for pool in ("a/a", "b/b"):
        asyncio.run(service.purge_requests_json(pool, None))
    storage.pending = EVERYTHING
    for pool in ("a/a", "b/b"):
        asyncio.run(service.purge_requests_json(pool, None))
    assert storage.pool_reads == 4


def test_outage_serves_cached_answers_while_fresh_only() -> None:
    """With the database down a still-fresh cached answer is served; an expired one is not."""
    service, storage, clock = make(cache_time_ms=10_000)
    asyncio.run(service.purge("p/w", "c"))
    asyncio.run(service.purge_requests_json("p/w", None))
    storage.pending = EVERYTHING
    storage.fail_next = 5
    assert requests_of(asyncio.run(service.purge_requests_json("p/w", None))) == ["c"]
    clock.now += 10_001
    with pytest.raises(StorageError):
        asyncio.run(service.purge_requests_json("p/w", None))


def test_storage_lifecycle_and_health_go_through_the_service() -> None:
    """start, check, count_open (at the service's clock) and close reach the storage; a
    database that does not answer raises StorageError from check."""
    service, storage, clock = make(retention_ms=1_000)

    async def scenario() -> int:
        await service.start()
        await service.purge("p/w", "a")
        clock.now += 500
        await service.purge("p/w", "b")
        clock.now += 600
        await service.check()
        open_now = await service.count_open()
        storage.down = True
        with pytest.raises(StorageError):
            await service.check()
        await service.close()
        return open_now

    assert asyncio.run(scenario()) == 1
    assert storage.calls == ["start", "check", f"count_open {clock.now}", "check", "close"]


def test_listing_pages_carry_the_storage_key_as_token() -> None:
    """allPurgeRequests joins the stored entries and names the next page by the key storage
    gives (not by what the entries say); the last page has no token."""
    service, storage, _ = make()
    for name in ("a", "b", "c"):
        asyncio.run(service.purge("p/w", name))
    storage.entries[("p/w", "b")] = b'{"cacheName":"misleading"}'
    first = orjson.loads(asyncio.run(service.list_json(None, 2)))
    assert [e["cacheName"] for e in first["requests"]] == ["a", "misleading"]
    second = orjson.loads(asyncio.run(service.list_json(first["continuationToken"], 2)))
    assert [e["cacheName"] for e in second["requests"]] == ["c"]
    assert "continuationToken" not in second

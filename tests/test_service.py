"""The purge-request cache of the hot path, with a fake storage that counts its calls."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import Callable, Sequence

import orjson
import pytest

from purgecache.circuit import CircuitOpen
from purgecache.expansion import Expansion
from purgecache.model import Provenance, PurgeRequest
from purgecache.selectors import Selector
from purgecache.service import EXPANSIONS_AT_ONCE, PurgeService
from purgecache.storage import NO_CHANGES, Changes, EntryPage, StorageError, StorageUnavailable
from purgecache.storage.base import EVERYTHING
from purgecache.storage.selectors import Candidate


class FakeStorage:
    """In-memory storage that counts pool reads and can be told to fail (`outage`: every
    operation fails as an unreachable database does, and is counted in `attempts`)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], PurgeRequest] = {}
        self.entries: dict[tuple[str, str], bytes] = {}
        self.pool_reads = 0
        self.fail_next = 0
        self.pending = NO_CHANGES
        self.calls: list[str] = []
        self.down = False
        self.outage = False
        self.attempts = 0
        self.probes = 0
        self.targets: set[str] = set()

    def _attempt(self) -> None:
        self.attempts += 1
        if self.outage:
            raise StorageUnavailable("connection refused")

    async def probe(self) -> None:
        self.probes += 1
        if self.outage:
            raise StorageUnavailable("connection refused")

    async def expire(self, now: int) -> int:
        self._attempt()
        return 0

    def changes(self) -> Changes:
        pending, self.pending = self.pending, NO_CHANGES
        return pending

    async def purge(self, request: PurgeRequest, entry: bytes, origin: Provenance) -> None:
        self._attempt()
        key = (request.worker_pool_id, request.cache_name)
        self.rows[key], self.entries[key] = request, entry

    async def list_entries(self, after: tuple[str, str] | None, limit: int, now: int) -> EntryPage:
        self._attempt()
        keys = sorted(
            k for k, r in self.rows.items() if r.expires > now and (not after or k > after)
        )
        return EntryPage(
            [self.entries[k] for k in keys[:limit]], keys[limit - 1] if len(keys) > limit else None
        )

    async def start(self) -> None:
        self.calls.append("start")

    async def add_event_targets(self, targets: Sequence[str]) -> None:
        self._attempt()
        self.targets.update(targets)

    async def event_targets(self) -> list[str]:
        return sorted(self.targets)

    async def check(self) -> None:
        self.calls.append("check")
        self._attempt()
        if self.down:
            raise StorageError("database down")

    async def count_open(self, now: int) -> int:
        self.calls.append(f"count_open {now}")
        self._attempt()
        return sum(r.expires > now for r in self.rows.values())

    async def close(self) -> None:
        self.calls.append("close")

    async def purge_requests(self, pool: str, now: int) -> list[PurgeRequest]:
        self.pool_reads += 1
        self._attempt()
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


def test_an_outage_opens_the_circuit_and_nothing_reaches_storage_until_a_probe_succeeds() -> None:
    """After the first outage failure every operation is refused at once (a StorageError that
    is also CircuitOpen) without a storage call; one probe runs at a time, and the first
    successful one closes the circuit: operations reach storage again."""
    service, storage, _ = make()
    service.circuit.interval = 0.01

    async def scenario() -> None:
        storage.outage = True
        with pytest.raises(StorageUnavailable):
            await service.purge("p/w", "c")
        assert service.circuit.is_open and storage.attempts == 1
        operations = (
            lambda: service.purge("p/w", "c"),
            lambda: service.purge_requests_json("p/w", None),
            lambda: service.list_json(None, 10),
            service.check,
            service.count_open,
            service.expire,
        )
        for operation in operations * 20:
            with pytest.raises(CircuitOpen) as refused:
                await operation()
            assert isinstance(refused.value, StorageError)
        assert storage.attempts == 1  # nothing but the probes reached the storage
        await asyncio.sleep(0.1)
        assert storage.probes > 1
        storage.outage = False
        while service.circuit.is_open:
            await asyncio.sleep(0.01)
        probes = storage.probes
        await service.purge("p/w", "c")
        assert requests_of(await service.purge_requests_json("p/w", None)) == ["c"]
        await asyncio.sleep(0.05)
        assert storage.probes == probes  # probing stopped with the circuit closed
        await service.close()

    asyncio.run(scenario())


def test_writes_wait_for_the_event_targets_and_are_refused_while_they_cannot_be_registered() -> (
    None
):
    """A service whose event targets are not registered yet (the database was away at
    start-up) registers them before its first write; while that fails, the write is refused
    (503) and nothing is stored: no purge is accepted without its events."""
    storage, clock = FakeStorage(), Clock()
    service = PurgeService(storage, retention_ms=1000, clock=clock, event_targets=["amqp"])  # type: ignore[arg-type]
    service.circuit.interval = 0.01

    async def scenario() -> None:
        storage.outage = True
        with pytest.raises(StorageUnavailable):
            await service.purge("p/w", "c")
        assert storage.rows == {} and storage.targets == set()
        storage.outage = False
        while service.circuit.is_open:
            await asyncio.sleep(0.01)
        await service.purge("p/w", "c")
        assert storage.targets == {"amqp"} and list(storage.rows) == [("p/w", "c")]
        await service.close()

    asyncio.run(scenario())


def test_stale_if_error_serves_the_last_good_answer_byte_for_byte_for_its_time() -> None:
    """While the database is down, a pool's last good answer is served as it was (each
    `since` as it filtered before) for `stale_if_error` after it went stale, then 503."""
    service, storage, clock = make(cache_time_ms=10_000, stale_if_error_ms=600_000)

    async def scenario() -> None:
        await service.purge("p/w", "c")
        clock.now += 5
        await service.purge("p/w", "d")
        good = await service.purge_requests_json("p/w", None)
        since = await service.purge_requests_json("p/w", clock.now)
        storage.outage = True
        clock.now += 10_000 + 600_000 - 1  # stale, and stale-if-error is nearly over
        assert await service.purge_requests_json("p/w", None) is good
        assert await service.purge_requests_json("p/w", clock.now - 610_000 + 1) == since
        assert storage.pool_reads == 2  # the one that opened the circuit, none after
        clock.now += 1
        with pytest.raises(StorageError):
            await service.purge_requests_json("p/w", None)
        with pytest.raises(StorageError):  # a pool never read has nothing to serve
            await service.purge_requests_json("q/w", None)
        await service.close()

    asyncio.run(scenario())


# ---- memory: right-sized entries and the byte bound (issue 17 item 6) ----------------

MIB = 1024 * 1024


def traced_growth(build: Callable[[], object]) -> tuple[int, object]:
    """Bytes that `build`'s result still holds once built (tracemalloc), and the result."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before, kept
    finally:
        tracemalloc.stop()


class PoolStorage(FakeStorage):
    """The fake storage with pools read by key (thousands of pools stay quick)."""

    def __init__(self) -> None:
        super().__init__()
        self.pools: dict[str, list[PurgeRequest]] = {}

    async def purge(self, request: PurgeRequest, entry: bytes, origin: Provenance) -> None:
        await super().purge(request, entry, origin)
        self.pools.setdefault(request.worker_pool_id, []).append(request)

    async def purge_requests(self, pool: str, now: int) -> list[PurgeRequest]:
        self.pool_reads += 1
        return sorted(self.pools.get(pool, []), key=lambda r: r.cache_name)


def make_service(**options: int) -> tuple[PurgeService, PoolStorage, int]:
    storage, clock = PoolStorage(), Clock()
    options = {"retention_ms": 86_400_000, "cache_time_ms": 10_000, **options}
    service = PurgeService(storage, clock=clock, **options)  # type: ignore[arg-type]
    return service, storage, clock.now


def fill(storage: PoolStorage, pools: int, rows: int, now: int) -> list[str]:
    """`pools` pools of `rows` open requests each, in the fake storage."""
    names = [f"proj-{index:05d}/workers" for index in range(pools)]
    for pool in names:
        storage.pools[pool] = [
            PurgeRequest(pool, f"gecko-level-3-cache-{row:03d}", now, now + 86_400_000)
            for row in range(rows)
        ]
    return names


def read_all(service: PurgeService, pools: list[str]) -> None:
    async def reads() -> None:
        for pool in pools:
            await service.purge_requests_json(pool, None)

    asyncio.run(reads())


def test_an_entry_holds_about_its_own_size() -> None:
    """`to_entry` bytes are right-sized: orjson 3.12+ hands back a 4 KiB buffer per call,
    which made every cached row cost 4 KiB (this fails with a bare `orjson.dumps`)."""
    request = PurgeRequest("proj-bench/linux-large-2204", "gecko-level-3-checkouts-v3", 1, 2)
    size = len(request.to_entry())
    held, _ = traced_growth(lambda: [request.to_entry() for _ in range(1000)])
    assert held / 1000 < size + 100


def test_cache_cost_estimates_what_an_entry_holds() -> None:
    """An entry's `cost` (what the byte bound counts) is within 25% of what the cached pool
    really holds, for small and large pools."""
    for rows in (1, 5, 50):
        service, storage, now = make_service()
        pools = fill(storage, 200, rows, now)
        held, _ = traced_growth(lambda: read_all(service, pools))  # noqa: B023 (called at once)
        counted = service.cache_size[1]
        assert 0.75 * held < counted < 1.25 * held, (rows, held, counted)


def test_cache_stays_within_its_byte_bound() -> None:
    """Reading 5,000 pools of 20 rows with a 1 MiB bound keeps at most 1 MiB of entries
    (about 130 pools here), the least recently used going first, and the memory held by the
    service stays near the bound."""
    service, storage, now = make_service(cache_max_bytes=MIB)
    pools = fill(storage, 5000, 20, now)
    held, _ = traced_growth(lambda: read_all(service, pools))
    count, counted = service.cache_size
    assert counted <= MIB
    assert 50 < count < 5000
    assert held < 1.5 * MIB
    reads = storage.pool_reads
    read_all(service, pools[-1:])  # the most recent: still cached
    assert storage.pool_reads == reads
    read_all(service, pools[:1])  # the first: evicted long ago
    assert storage.pool_reads == reads + 1


def test_cache_bytes_follow_purges_and_replacements() -> None:
    """Purging a pool (its entry dropped) and re-reading it keep the byte count exact."""
    service, storage, now = make_service()
    clock = service.clock
    pools = fill(storage, 3, 5, now)
    read_all(service, pools)
    _, full = service.cache_size
    asyncio.run(service.purge(pools[0], "another-cache"))
    assert service.cache_size[0] == 2
    read_all(service, pools)
    count, counted = service.cache_size
    assert count == 3 and counted > full  # one row more in the first pool
    clock.now += 20_000  # type: ignore[attr-defined]  # all stale: re-read and replaced
    read_all(service, pools)
    assert service.cache_size == (count, counted)


def test_a_pool_larger_than_the_bound_is_answered_and_not_kept() -> None:
    """A pool whose answer alone exceeds the byte bound is answered each time from storage."""
    service, storage, now = make_service(cache_max_bytes=10_000)
    pools = fill(storage, 1, 100, now)
    read_all(service, pools * 2)
    assert storage.pool_reads == 2
    assert service.cache_size == (0, 0)


def test_selectors_are_expanded_a_few_at_a_time() -> None:
    """A burst of selector expansions (each may read the whole history) reads the storage at
    most EXPANSIONS_AT_ONCE at a time; every one of them is answered."""
    service, storage, _ = make()
    reading, most = 0, 0

    async def candidates(*_: object) -> list[Candidate]:
        nonlocal reading, most
        reading += 1
        most = max(most, reading)
        await asyncio.sleep(0.01)
        reading -= 1
        return [Candidate("p/w", "c", "history", None, 0)]

    storage.selector_candidates = candidates  # type: ignore[attr-defined]

    async def burst() -> list[Expansion]:
        return await asyncio.gather(
            *(service.expand_selector(Selector("p/*", "*")) for _ in range(3 * EXPANSIONS_AT_ONCE))
        )

    answers = asyncio.run(burst())
    assert [len(a.pairs) for a in answers] == [1] * 3 * EXPANSIONS_AT_ONCE
    assert most == EXPANSIONS_AT_ONCE

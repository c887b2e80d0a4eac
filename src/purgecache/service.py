"""The purge-cache operations, independent of HTTP: purge, a pool's requests, listing, expiry.

`purge_requests` is the hot path (every worker calls it before every task), so its answers
come from a bounded per-pool cache of ready-made JSON fragments, refreshed from storage at most
every `cache_time` ms. A purge made through this process updates its cache at once.

Every storage operation goes through one circuit (`purgecache.circuit`): a database outage
opens it, and until a probe finds the database back every operation is refused at once
(`DatabaseDown`, a StorageError) instead of waiting for the connection pool. Meanwhile a pool
whose answer went stale is still answered from its last good answer, for up to
`stale_if_error` ms. A cache hit never looks at the circuit.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import ParamSpec, TypeVar

import orjson

from purgecache import convergence
from purgecache.circuit import Circuit, CircuitOpen
from purgecache.convergence import STRAGGLERS_SHOWN, CacheRow, caches_wire, pool_status
from purgecache.events.targets import TargetRegistration
from purgecache.expansion import MAX_CANDIDATES, Expansion, TooManyPairs, expand
from purgecache.fetchlog import FetchLog
from purgecache.model import (
    HistoryFilter,
    Provenance,
    PurgeRequest,
    WorkerReport,
    format_time,
    is_worker_pool_id,
)
from purgecache.selectors import Selector, literal_prefix
from purgecache.settings import (
    DEFAULT_ACTIVITY_WINDOW_MS,
    DEFAULT_HISTORY_RETENTION_MS,
    DEFAULT_SELECTOR_CONFIRM_THRESHOLD,
    DEFAULT_UNTIL_APPLIED_MAX_AGE_MS,
    DEFAULT_WORKER_RETENTION_MS,
)
from purgecache.storage import (
    NO_CHANGES,
    HistoryPage,
    Storage,
    StorageError,
    StorageUnavailable,
)
from purgecache.storage.selectors import AppliedSelector, StoredSelector

Clock = Callable[[], int]
P = ParamSpec("P")
T = TypeVar("T")

MAX_PAGE_SIZE = 1000
MAX_POOL_SELECTORS = 1000  # open selectors read for one pool's answer
EXPANSIONS_AT_ONCE = 2  # selectors expanded at once per process (each may read the whole history)
UNKNOWN_ORIGIN = Provenance("purgeCache")  # a purge made without an API request (tests, tools)
CACHE_MAX_BYTES = 16 * 1024 * 1024  # what the per-pool cache may hold, about (see `_cost`)
_ENTRY_OVERHEAD = 300  # bytes of an entry besides its rows: the entry, its tuples, its key
_ROW_OVERHEAD = 100  # per row: its fragment's bytes header, its `before`, two tuple slots


def wall_clock_ms() -> int:
    """The wall clock in ms since the epoch."""
    return time.time_ns() // 1_000_000


class InvalidContinuationToken(ValueError):
    """A continuation token this service did not hand out."""


class DatabaseDown(StorageUnavailable, CircuitOpen):
    """Refused at once: the database failed recently and the probe has not seen it back."""

    def __init__(self) -> None:
        super().__init__("the database is down (circuit open): refused without trying")


def _token(worker_pool_id: str, cache_name: str) -> str:
    """An opaque token naming the last row of a page (keyset pagination)."""
    key = orjson.dumps([worker_pool_id, cache_name])
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode("ascii")


def decode_token(token: str) -> tuple[str, str]:
    """The key a token names, or InvalidContinuationToken."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        key = orjson.loads(raw)
    except (binascii.Error, ValueError) as error:
        raise InvalidContinuationToken("invalid continuation token") from error
    if (
        not isinstance(key, list)
        or len(key) != 2
        or not all(isinstance(part, str) for part in key)
        or not is_worker_pool_id(key[0])
    ):
        raise InvalidContinuationToken("invalid continuation token")
    return key[0], key[1]


def history_token(after: tuple[int, int]) -> str:
    """An opaque token naming the last event of a history page (time, event id)."""
    return base64.urlsafe_b64encode(orjson.dumps(["h", *after])).rstrip(b"=").decode("ascii")


def decode_history_token(token: str) -> tuple[int, int]:
    """The key a history token names, or InvalidContinuationToken."""
    try:
        key = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError) as error:
        raise InvalidContinuationToken("invalid continuation token") from error
    if (
        not isinstance(key, list)
        or len(key) != 3
        or key[0] != "h"
        or not all(type(part) is int and 0 <= part < 2**63 for part in key[1:])
    ):
        raise InvalidContinuationToken("invalid continuation token")
    return key[1], key[2]


@dataclass(frozen=True, slots=True)
class _PoolEntry:
    fetched: int
    stale_at: int  # the earliest of fetched + cache_time and the first expiry among the rows
    generation: int  # the cache generation it was read in; older ones must be re-read
    befores: tuple[int, ...]  # each row's `before`, for the `since` filter
    newest: int  # the newest `before` among the rows (0: none): what a fetch of it served
    fragments: tuple[bytes, ...]  # each row's JSON object, ready to splice
    body: bytes  # the whole answer without a `since` filter
    cost: int  # about how many bytes it holds: what the cache's byte bound counts


def _entry(rows: list[PurgeRequest], now: int, cache_time: int, generation: int) -> _PoolEntry:
    fragments = tuple(row.to_entry() for row in rows)
    stale_at = min([now + cache_time, *(row.expires for row in rows)])
    body = b'{"requests":[' + b",".join(fragments) + b"]}"
    cost = 2 * len(body) + _ROW_OVERHEAD * len(rows) + _ENTRY_OVERHEAD  # body + fragments
    befores = tuple(row.before for row in rows)
    newest = max(befores, default=0)
    return _PoolEntry(now, stale_at, generation, befores, newest, fragments, body, cost)


def _answer(entry: _PoolEntry, since: int | None) -> bytes:
    """A pool's `purgeRequests` answer: its requests with `before >= since`, by cache name."""
    if since is None:
        return entry.body
    pairs = zip(entry.befores, entry.fragments, strict=True)
    chosen = [fragment for before, fragment in pairs if before >= since]
    if len(chosen) == len(entry.befores):
        return entry.body
    return b'{"requests":[' + b",".join(chosen) + b"]}"


class PurgeService:
    """Purge requests with a retention period, over any Storage.

    The per-pool cache keeps at most `cache_max_pools` pools and about `cache_max_bytes`
    bytes of answers, the least recently used going first.
    """

    def __init__(
        self,
        storage: Storage,
        *,
        retention_ms: int,
        history_retention_ms: int = DEFAULT_HISTORY_RETENTION_MS,
        worker_retention_ms: int = DEFAULT_WORKER_RETENTION_MS,
        activity_window_ms: int = DEFAULT_ACTIVITY_WINDOW_MS,
        until_applied_default: bool = False,
        until_applied_max_age_ms: int = DEFAULT_UNTIL_APPLIED_MAX_AGE_MS,
        selector_confirm_threshold: int = DEFAULT_SELECTOR_CONFIRM_THRESHOLD,
        cache_time_ms: int = 10_000,
        cache_max_pools: int = 10_000,
        cache_max_bytes: int = CACHE_MAX_BYTES,
        stale_if_error_ms: int = 0,
        clock: Clock = wall_clock_ms,
        on_cache_hit: Callable[[], object] = lambda: None,
        on_cache_miss: Callable[[], object] = lambda: None,
        event_targets: Sequence[str] = (),
    ) -> None:
        self.storage = storage
        self.targets = TargetRegistration(storage, event_targets)
        self.retention_ms = retention_ms
        self.history_retention_ms = history_retention_ms
        self.worker_retention_ms = worker_retention_ms
        self.activity_window_ms = activity_window_ms
        self.until_applied_default = until_applied_default
        self.until_applied_max_age_ms = max(until_applied_max_age_ms, retention_ms)
        self.selector_confirm_threshold = selector_confirm_threshold
        self.fetches = FetchLog()
        self.cache_time_ms = cache_time_ms
        self.cache_max_pools = cache_max_pools
        self.cache_max_bytes = cache_max_bytes
        self.stale_if_error_ms = stale_if_error_ms
        self.clock = clock
        self.circuit = Circuit("database", storage.probe, DatabaseDown)
        # Expanding a selector reads up to MAX_CANDIDATES rows (on SQLite, the whole history):
        # a few at once, the others wait, so that a burst of them cannot take the database.
        self._expansions = asyncio.Semaphore(EXPANSIONS_AT_ONCE)
        self._cache: OrderedDict[str, _PoolEntry] = OrderedDict()
        self._cache_bytes = 0  # the sum of the cached entries' `cost`
        self._generation = 0
        self.on_cache_hit = on_cache_hit
        self.on_cache_miss = on_cache_miss

    async def purge(
        self,
        worker_pool_id: str,
        cache_name: str,
        origin: Provenance = UNKNOWN_ORIGIN,
        until_applied: bool | None = None,
    ) -> PurgeRequest:
        """Record (or refresh) a purge request, and its event in the history; durable when
        this returns. `until_applied` (None: the service's default) keeps it past the
        retention until every active worker applied it, up to the maximum age."""
        now = self.clock()
        request = self._request(worker_pool_id, cache_name, now, until_applied)
        await self._write(self.storage.purge, request, request.to_entry(), origin)
        self._forget(worker_pool_id)  # our own write is visible at once
        return request

    def _request(
        self, worker_pool_id: str, cache_name: str, now: int, until_applied: bool | None
    ) -> PurgeRequest:
        return PurgeRequest(worker_pool_id, cache_name, now, *self._policy(now, until_applied))

    def _policy(self, now: int, until_applied: bool | None) -> tuple[int, int | None]:
        """A purge made now: its `expires` and its `until_applied` (None: the normal policy),
        by the policy asked for (None: the service's default)."""
        retention_end = now + self.retention_ms
        if until_applied is None:
            until_applied = self.until_applied_default
        if not until_applied:
            return retention_end, None
        return now + self.until_applied_max_age_ms, retention_end

    async def cancel(self, worker_pool_id: str, cache_name: str, origin: Provenance) -> int | None:
        """Withdraw the open purge of a pool's cache (workers stop receiving it), and the pair
        from every open selector that covers it (agents leave its caches alone); its
        `before`, or None (nothing done) when there is no open purge. Durable when this
        returns."""
        now = self.clock()
        rows = await self._stored(
            self.storage.pool_selectors, worker_pool_id, 0, now, MAX_POOL_SELECTORS
        )
        covering = [
            AppliedSelector(pool, cache, before)
            for pool, cache, before in rows
            if Selector(pool, cache).matches(worker_pool_id, cache_name)
        ]
        before = await self._write(
            self.storage.cancel, (worker_pool_id, cache_name), now, origin, covering
        )
        self._forget(worker_pool_id)  # our own write is visible at once
        return before

    async def settle(self) -> int:
        """The expiry job's convergence sweep: mark the purges every active worker applied as
        converged (`purge.converged`), and end the purges kept until applied that are past
        their retention and applied everywhere, or whose pool has no active worker. How many
        purges it acted on."""
        now = self.clock()
        active_since = now - self.activity_window_ms
        unsettled = await self._stored(self.storage.unsettled, now)
        decided = []
        for pool, group in itertools.groupby(unsettled, key=lambda u: u[0].worker_pool_id):
            purges = list(group)
            wanted = [(purge.cache_name, purge.before) for purge, _ in purges]
            tallies = await self._stored(self.storage.purge_tallies, pool, wanted, active_since, 0)
            for (purge, converged), tally in zip(purges, tallies, strict=True):
                settled = convergence.settle(purge, converged, tally, now)
                if settled is not None:
                    decided.append(settled)
        if decided:
            await self._write(self.storage.settle, decided, now)
            for pool in {settled.request.worker_pool_id for settled in decided}:
                self._forget(pool)
        return len(decided)

    async def _stored(
        self, operation: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """A storage operation through the circuit: refused at once while it is open; a
        failure that shows an outage opens it."""
        self.circuit.check()
        try:
            return await operation(*args, **kwargs)
        except StorageUnavailable as error:
            self.circuit.trip(error)
            raise

    def _write(
        self, operation: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> Awaitable[T]:
        """A storage write that may make events, through the circuit: this process's event
        targets are registered first (waited for, or the write is refused), so that its
        events are stored for them. Once they are, the write itself (no coroutine of its own:
        every purge comes this way)."""
        if self.targets.done:
            return self._stored(operation, *args, **kwargs)
        return self._write_registered(operation, *args, **kwargs)

    async def _write_registered(
        self, operation: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        await self._stored(self.targets.ensure)
        return await self._stored(operation, *args, **kwargs)

    def _take_changes(self) -> None:
        """Forget what other processes changed: one pool's entry, or every entry's trust."""
        changes = self.storage.changes()
        if changes is NO_CHANGES:
            return
        if changes.everything:
            self._generation += 1
        for pool in changes.pools:
            entry = self._cache.get(pool)
            if entry is not None:
                self._cache[pool] = replace(entry, generation=-1)

    def _cached(self, worker_pool_id: str, now: int) -> _PoolEntry | None:
        """The pool's entry if it is fresh and nothing changed it since (a cache hit)."""
        self._take_changes()
        entry = self._cache.get(worker_pool_id)
        if entry is not None and now < entry.stale_at and entry.generation == self._generation:
            self._cache.move_to_end(worker_pool_id)
            self.on_cache_hit()
            return entry
        return None

    async def _pool(self, worker_pool_id: str) -> _PoolEntry:
        now = self.clock()
        hit = self._cached(worker_pool_id, now)
        if hit is not None:
            return hit
        entry = self._cache.get(worker_pool_id)
        self.on_cache_miss()
        generation = self._generation
        try:
            rows = await self._stored(self.storage.purge_requests, worker_pool_id, now)
        except StorageError:
            # The database is away: the last good answer, fresh or not stale for too long.
            if entry is not None and now < entry.stale_at + self.stale_if_error_ms:
                return entry
            raise  # failures are never cached
        entry = _entry(rows, now, self.cache_time_ms, generation)
        self._keep(worker_pool_id, entry)
        return entry

    def _keep(self, worker_pool_id: str, entry: _PoolEntry) -> None:
        """Cache a pool's entry, evicting the least recently used ones beyond the bounds (an
        entry larger than the whole byte bound is answered once and not kept)."""
        self._forget(worker_pool_id)
        if entry.cost > self.cache_max_bytes:
            return
        self._cache[worker_pool_id] = entry
        self._cache_bytes += entry.cost
        cache = self._cache
        while len(cache) > self.cache_max_pools or self._cache_bytes > self.cache_max_bytes:
            self._cache_bytes -= cache.popitem(last=False)[1].cost

    def _forget(self, worker_pool_id: str) -> None:
        entry = self._cache.pop(worker_pool_id, None)
        if entry is not None:
            self._cache_bytes -= entry.cost

    @property
    def cache_size(self) -> tuple[int, int]:
        """Pools in the per-pool cache and about how many bytes they hold."""
        return len(self._cache), self._cache_bytes

    def cached_purge_requests_json(
        self, worker_pool_id: str, since: int | None, client_id: str | None = None
    ) -> bytes | None:
        """Like purge_requests_json when the answer is in the cache, else None (no I/O)."""
        entry = self._cached(worker_pool_id, self.clock())
        if entry is None:
            return None
        if client_id is not None:
            self.fetches.note(worker_pool_id, client_id, entry.newest)
        return _answer(entry, since)

    async def purge_requests_json(
        self, worker_pool_id: str, since: int | None, client_id: str | None = None
    ) -> bytes:
        """The JSON answer of `purgeRequests`: requests with `before >= since`, by cache name;
        served to `client_id` (None: anonymous, not noted as a fetch)."""
        entry = await self._pool(worker_pool_id)
        if client_id is not None:
            self.fetches.note(worker_pool_id, client_id, entry.newest)
        return _answer(entry, since)

    async def flush_fetches(self) -> int:
        """Write the fetches noted since the last flush in one transaction; how many rows
        (kept for the next flush if the write fails)."""
        rows = self.fetches.drain(self.clock())
        if rows:
            try:
                await self._stored(self.storage.record_fetches, rows)
            except StorageError:
                self.fetches.restore(rows)
                raise
        return len(rows)

    async def purge_status(self, worker_pool_id: str, cache_name: str | None) -> dict[str, object]:
        """The `purgeStatus` answer: each open purge of the pool (or of `cache_name`) with
        how far its active workers got. Read from storage, so a receipt accepted by any
        process counts."""
        now = self.clock()
        active_since = now - self.activity_window_ms
        purges = await self._stored(self.storage.purge_requests, worker_pool_id, now)
        if cache_name is not None:
            purges = [purge for purge in purges if purge.cache_name == cache_name]
        wanted = [(purge.cache_name, purge.before) for purge in purges]
        tallies = await self._stored(
            self.storage.purge_tallies, worker_pool_id, wanted, active_since, STRAGGLERS_SHOWN
        )
        return pool_status(worker_pool_id, purges, tallies, active_since)

    async def pool_caches(self, worker_pool_id: str) -> dict[str, object]:
        """The `poolCaches` answer: the cache names the pool's active workers hold (from the
        inventory of each one's latest report that listed one), summed per name."""
        active_since = self.clock() - self.activity_window_ms
        held = await self._stored(self.storage.worker_inventory, worker_pool_id)
        totals: dict[str, list[int]] = {}
        latest: dict[str, int | None] = {}
        for entry in held:
            if entry.reported_at < active_since:
                continue
            cache = entry.inventory
            total = totals.setdefault(cache.cache_name, [0, 0, 0])
            total[0] += 1
            total[1] += cache.instances
            total[2] += cache.bytes
            used, seen = cache.last_used, latest.get(cache.cache_name)
            latest[cache.cache_name] = used if seen is None else max(seen, used or seen)
        rows: list[CacheRow] = [
            (name, workers, instances, size, latest[name])
            for name, (workers, instances, size) in sorted(totals.items())
        ]
        return caches_wire(worker_pool_id, active_since, rows)

    async def expand_selector(self, selector: Selector) -> Expansion:
        """The (pool, cache name) pairs `selector` matches today: from the inventory of the
        workers active within the activity window, the history and the open requests;
        TooManyPairs when it reaches too many."""
        async with self._expansions:
            now = self.clock()
            candidates = await self._stored(
                self.storage.selector_candidates,
                literal_prefix(selector.pool_pattern),
                now - self.activity_window_ms,
                now,
                MAX_CANDIDATES + 1,
            )
        if len(candidates) > MAX_CANDIDATES:
            raise TooManyPairs(
                f"the pool pattern reaches more than {MAX_CANDIDATES} known (pool, cache name) "
                "pairs; start it with a longer literal prefix"
            )
        return expand(selector, candidates)

    async def apply_selector(
        self, expansion: Expansion, origin: Provenance, until_applied: bool | None = None
    ) -> tuple[int, list[PurgeRequest]]:
        """Purge every pair of `expansion` and keep the selector for agents, in one
        transaction, each history event naming the selector; the purges' `before`, and the
        purges. `until_applied` (None: the service's default) keeps the purges until applied
        and serves the selector as long as that may last (its maximum age); a pair whose open
        purge is kept until applied keeps the policy, so that a selector never shortens it."""
        now = self.clock()
        expires, _ = self._policy(now, until_applied)
        selector = expansion.selector
        origin = origin._replace(
            selector_pool_pattern=selector.pool_pattern,
            selector_cache_pattern=selector.cache_pattern,
        )
        kept = await self._kept_until_applied(expansion, now)
        requests = [
            self._request(pool, cache, now, True if (pool, cache) in kept else until_applied)
            for pool, cache in expansion.keys
        ]
        prefix = literal_prefix(selector.pool_pattern)
        stored = StoredSelector(selector.pool_pattern, selector.cache_pattern, prefix, now, expires)
        rows = [(request, request.to_entry(), origin) for request in requests]
        await self._write(self.storage.purge_selector, stored, rows)
        for pool in expansion.pools:
            self._forget(pool)  # our own writes are visible at once
        return now, requests

    async def selector_purges(self, selector: Selector) -> tuple[int, list[tuple[str, str]]] | None:
        """The open selector's `before` and the pairs whose open purge it wrote; None when
        no selector with its patterns is open."""
        return await self._stored(
            self.storage.selector_purges,
            selector.pool_pattern,
            selector.cache_pattern,
            self.clock(),
        )

    async def cancel_selector(
        self, selector: Selector, before: int, pairs: list[tuple[str, str]], origin: Provenance
    ) -> list[tuple[str, str]] | None:
        """Withdraw the selector applied at `before` (agents stop applying it) and the open
        purges it wrote among `pairs`, each recorded as cancelled; the pairs whose purge went,
        or None when the selector is no longer open with that `before`. Durable on return."""
        applied = AppliedSelector(selector.pool_pattern, selector.cache_pattern, before)
        gone = await self._write(self.storage.cancel_selector, applied, pairs, self.clock(), origin)
        for pool in {pool for pool, _ in gone or ()}:
            self._forget(pool)  # our own writes are visible at once
        return gone

    async def _kept_until_applied(self, expansion: Expansion, now: int) -> set[tuple[str, str]]:
        """The pairs of `expansion` whose open purge is kept until applied (read from the pools
        where the expansion found open requests)."""
        pools = {pair.worker_pool_id for pair in expansion.pairs if "requests" in pair.known_from}
        kept: set[tuple[str, str]] = set()
        for pool in sorted(pools):
            rows = await self._stored(self.storage.purge_requests, pool, now)
            kept.update((pool, row.cache_name) for row in rows if row.until_applied is not None)
        return kept

    async def pool_selectors(self, worker_pool_id: str, since: int | None) -> dict[str, object]:
        """The `listPoolSelectors` answer: the open selectors whose pool pattern matches the
        pool, with `before` at or after `since`, newest first, each with the pool's cache
        names withdrawn from it (`exceptCacheNames`, when there are any)."""
        now = self.clock()
        rows = await self._stored(
            self.storage.pool_selectors, worker_pool_id, since or 0, now, MAX_POOL_SELECTORS
        )
        rows = [row for row in rows if Selector(row[0], row[1]).matches_pool(worker_pool_id)]
        withdrawn: dict[tuple[str, str, int], list[str]] = {}
        if rows:  # (a pool without selectors, the common case, costs no second read)
            found = await self._stored(self.storage.selector_exceptions, worker_pool_id, now)
            for pool, cache, before, name in found:
                withdrawn.setdefault((pool, cache, before), []).append(name)
        selectors = [
            {"workerPoolPattern": pool, "cacheNamePattern": cache, "before": format_time(before)}
            | (
                {"exceptCacheNames": names}
                if (names := withdrawn.get((pool, cache, before)))
                else {}
            )
            for pool, cache, before in rows
        ]
        return {"workerPoolId": worker_pool_id, "selectors": selectors}

    async def prune_workers(self) -> int:
        """Forget workers and fetching client ids not heard from for the worker retention."""
        return await self._stored(
            self.storage.prune_workers, self.clock() - self.worker_retention_ms
        )

    async def list_json(self, token: str | None, limit: int) -> bytes:
        """The JSON answer of `allPurgeRequests`: one page of all requests in (pool, cache
        name) order, with the next page's token unless it is the last page."""
        after = decode_token(token) if token is not None else None
        page = await self._stored(
            self.storage.list_entries, after, min(limit, MAX_PAGE_SIZE), self.clock()
        )
        entries = page.entries
        head = b'{"requests":['
        if page.next_after is not None:
            head = b'{"continuationToken":"%s","requests":[' % _token(*page.next_after).encode()
        if not entries:
            return head + b"]}"
        # One join builds the whole answer: a page is up to ~100 KB, worth copying only once.
        entries[0] = head + entries[0]
        entries[-1] += b"]}"
        return b",".join(entries)

    async def expire(self) -> int | None:
        """Delete every request past its retention; how many went (None: another process is
        expiring right now)."""
        return await self._write(self.storage.expire, self.clock())

    async def purge_history(
        self, query: HistoryFilter, token: str | None, limit: int
    ) -> HistoryPage:
        """One page of the purge events `query` matches, newest first, and their total."""
        after = decode_history_token(token) if token is not None else None
        return await self._stored(
            self.storage.purge_history, query, after, min(limit, MAX_PAGE_SIZE)
        )

    async def report_worker_sync(self, report: WorkerReport, client_id: str | None = None) -> None:
        """Keep a worker's receipts, received now; durable when this returns. `client_id`
        (who sent it) then counts by its workers' receipts, not as a fetching worker."""
        await self._write(self.storage.report_worker_sync, report, self.clock())
        if client_id is not None:
            self.fetches.note_reporter(report.worker_pool_id, client_id)

    async def prune_history(self) -> int:
        """Delete history events older than the history retention; how many went."""
        return await self._stored(
            self.storage.prune_history, self.clock() - self.history_retention_ms
        )

    async def outbox_depth(self) -> tuple[int, int]:
        """How many event deliveries are pending and how many failed."""
        return await self._stored(self.storage.outbox_depth)

    async def start(self) -> None:
        """Begin the storage's background work (change notifications); needs a running loop."""
        await self.storage.start()

    async def check(self) -> None:
        """Raise StorageError unless the database answers."""
        await self._stored(self.storage.check)

    async def count_open(self) -> int:
        """How many purge requests are open now; StorageError if the database is away."""
        return await self._stored(self.storage.count_open, self.clock())

    async def close(self) -> None:
        """Write the fetches noted last, stop probing; release the storage's connections and
        threads."""
        with contextlib.suppress(StorageError):
            await self.flush_fetches()
        await self.circuit.close()
        await self.storage.close()

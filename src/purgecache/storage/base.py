"""The storage interface every backend implements, and its errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from purgecache.model import HistoryFilter, Provenance, PurgeRequest, WorkerReport
from purgecache.storage.fetches import FetchRow, PurgeTally
from purgecache.storage.history import HistoryPage
from purgecache.storage.outbox import Claimed, Delivery
from purgecache.storage.receipts import StoredInventory, StoredReceipt
from purgecache.storage.selectors import AppliedSelector, Candidate, Pair, StoredSelector
from purgecache.storage.settling import Settled, Unsettled


class StorageError(Exception):
    """The database could not do what was asked (unreachable, locked, corrupt...)."""


class StorageUnavailable(StorageError):
    """The database cannot be reached (down, unreachable, refusing or dropping connections):
    an outage, as opposed to one operation failing."""


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
POLICY_SCHEMA = 10  # the schema version (both backends) that keeps each request's policy
EVERYTHING = Changes(everything=True)


@dataclass(frozen=True, slots=True)
class EntryPage:
    """A listing page: stored entries in key order, and the key of the last one when more
    entries follow it (None on the last page)."""

    entries: list[bytes]
    next_after: tuple[str, str] | None


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

    async def purge(self, request: PurgeRequest, entry: bytes, origin: Provenance) -> None:
        """Insert the request or move `before`/`expires` (and its until-applied policy) of the
        existing one, keeping `entry` (opaque UTF-8 bytes, given back as they are by
        list_entries), and add the purge to the history (at `request.before`, with `origin`)
        in the same transaction, ending the purge it replaces as superseded; durable on
        return."""

    async def purge_selector(
        self, selector: StoredSelector, rows: Sequence[tuple[PurgeRequest, bytes, Provenance]]
    ) -> None:
        """Purge each (request, entry, origin) as `purge` does, and keep the applied selector
        (a re-applied one takes the new `before` and `expires`), all in one transaction."""

    async def selector_candidates(
        self, pool_prefix: str, active_since: int, now: int, limit: int
    ) -> list[Candidate]:
        """Up to `limit` rows naming the (pool, cache name) pairs known in the pools whose id
        starts with `pool_prefix`, one per source: the inventory of workers that reported it
        since `active_since` (a row per worker), the history, the requests open at `now`."""

    async def pool_selectors(
        self, worker_pool_id: str, since: int, now: int, limit: int
    ) -> list[tuple[str, str, int]]:
        """Up to `limit` selectors (pool pattern, cache pattern, before) open at `now`, with
        `before >= since`, whose pool pattern's literal prefix starts `worker_pool_id`,
        newest first (the caller matches the pool pattern itself)."""

    async def selector_purges(
        self, pool_pattern: str, cache_pattern: str, now: int
    ) -> tuple[int, list[Pair]] | None:
        """The `before` of the selector open at `now` with these patterns, and the (pool,
        cache name) pairs whose open purge it wrote, sorted; None when it is not open."""

    async def cancel_selector(
        self, applied: AppliedSelector, pairs: Sequence[Pair], now: int, origin: Provenance
    ) -> list[Pair] | None:
        """Withdraw the `applied` selector and the open purges at its `before` of `pairs`,
        each ended as cancelled with a `purge.cancelled` event (`origin`), in one
        transaction; the pairs whose purge went, or None (nothing done) when the selector is
        no longer open with that `before`."""

    async def selector_exceptions(
        self, worker_pool_id: str, now: int
    ) -> list[tuple[str, str, int, str]]:
        """The cache names of `worker_pool_id` withdrawn from the selectors open at `now`:
        (pool pattern, cache pattern, before, cache name), sorted."""

    async def put_many(self, rows: Sequence[tuple[PurgeRequest, bytes]]) -> None:
        """Store (request, entry) pairs in one transaction (bulk import); an existing row keeps
        the later `before` (with its entry) and the later `expires` of the two."""

    async def purge_requests(self, worker_pool_id: str, now: int) -> list[PurgeRequest]:
        """Unexpired requests of one pool, ordered by cache name (code-point order)."""

    async def list_page(
        self, after: tuple[str, str] | None, limit: int, now: int, *, with_policy: bool = True
    ) -> list[PurgeRequest]:
        """Up to `limit` unexpired requests strictly after the key `after`, in key order,
        with their until-applied policy (`with_policy=False` reads a schema older than
        `POLICY_SCHEMA`, which has none)."""

    async def list_entries(self, after: tuple[str, str] | None, limit: int, now: int) -> EntryPage:
        """Like list_page, as the entries kept with the rows (ready to join), and the key of
        the page's last row, read from its columns, when more rows follow."""

    async def expire(self, now: int) -> int | None:
        """Delete requests (and applied selectors) whose `expires` is at or before `now`, with
        a `purge.expired` event for each request and its history event ended (at `expires`:
        converged if it had, else expired) in the same transaction; return how many requests
        went, or None when another process is expiring right now (only one runs at a time)."""

    async def unsettled(self, now: int) -> list[Unsettled]:
        """Open requests the convergence sweep looks at, by pool and cache name, each with
        whether it converged already: those not yet converged, and until-applied ones past
        their normal retention (`until_applied` <= `now`)."""

    async def settle(self, decided: Sequence[Settled], now: int) -> None:
        """Carry out the sweep's decisions in one transaction, each only if the request still
        has the `before` it was made for: mark it converged (with its `purge.converged`
        event), remove it (its history event ended at `now` for the reason given; with a
        `purge.expired` event when it expired)."""

    async def cancel(
        self, pair: Pair, now: int, origin: Provenance, covering: Sequence[AppliedSelector] = ()
    ) -> int | None:
        """Remove the open request of a pool's cache (`pair`), its history event ended as cancelled
        and a `purge.cancelled` event (who, why: `origin`) in the same transaction, and
        withdraw the pair from the `covering` selectors (`selector_exceptions`); return its
        `before`, or None (nothing done) when there was no open request."""

    async def purge_history(
        self, query: HistoryFilter, after: tuple[int, int] | None, limit: int
    ) -> HistoryPage:
        """Up to `limit` events matching `query` strictly older than the key `after` (time,
        event id), newest first, with how many match in all (one snapshot)."""

    async def prune_history(self, before: int) -> int:
        """Delete the history's events from before `before`; return how many went."""

    async def report_worker_sync(self, report: WorkerReport, now: int) -> None:
        """Keep a worker's receipts (a receipt for an older `before` than the stored one is
        ignored) and that it reported at `now`; durable on return."""

    async def worker_receipts(self, worker_pool_id: str) -> list[StoredReceipt]:
        """Every receipt of a pool's workers, by worker group, worker id and cache name."""

    async def worker_inventory(self, worker_pool_id: str) -> list[StoredInventory]:
        """What a pool's workers last said they hold, by worker group, worker id and cache
        name."""

    async def record_fetches(self, rows: Sequence[FetchRow]) -> None:
        """Keep, per (pool, client id), the newest `before` served, the latest time seen and
        whether the client id reports (each the newest of stored and given); one transaction."""

    async def purge_tallies(
        self, worker_pool_id: str, purges: Sequence[tuple[str, int]], active_since: int, shown: int
    ) -> list[PurgeTally]:
        """For each purge (cache name, `before`), how the pool's workers heard from since
        `active_since` stand, with the first `shown` stragglers of each kind; one snapshot."""

    async def prune_workers(self, before: int) -> int:
        """Forget workers (receipts included) and fetching client ids not heard from since
        `before`; return how many went."""

    async def add_event_targets(self, targets: Sequence[str]) -> None:
        """Register targets (every new event gets a delivery per registered target); the
        targets registered before stay."""

    async def event_targets(self) -> list[str]:
        """Every registered target, sorted."""

    async def remove_event_targets(self, targets: Sequence[str]) -> int:
        """Unregister targets and drop their undelivered deliveries; how many were dropped."""

    async def claim_events(self, target: str, now: int, lease_ms: int, limit: int) -> list[Claimed]:
        """Lease up to `limit` due deliveries of `target` until `now + lease_ms`: no other
        claim gets them meanwhile (whichever process asks)."""

    async def event_delivered(self, target: str, seq: int) -> None:
        """Forget a delivery that was made."""

    async def event_failed(
        self, target: str, seq: int, attempts: int, next_at: int, failed_at: int | None, error: str
    ) -> None:
        """Record a failed attempt: retry at `next_at`, or never again when `failed_at` is set
        (until `retry_events`)."""

    async def event_deliveries(self, limit: int) -> list[Delivery]:
        """Up to `limit` deliveries not yet made, pending and failed, oldest first."""

    async def retry_events(self, target: str | None, event_id: str | None) -> int:
        """Make failed deliveries (of one target, one event, or all) due now; how many."""

    async def drop_events(self, target: str | None, event_id: str | None, pending: bool) -> int:
        """Delete failed deliveries (with `pending`, pending ones too); how many went."""

    async def outbox_depth(self) -> tuple[int, int]:
        """How many deliveries are pending and how many failed."""

    async def count_open(self, now: int) -> int:
        """How many unexpired purge requests there are."""

    async def check(self) -> None:
        """Raise StorageError unless the database answers a trivial query."""

    async def probe(self) -> None:
        """After an outage: drop every pooled connection (whoever waits for one fails with
        StorageUnavailable at once), then raise StorageError unless a new connection answers
        a trivial query; the next operation connects afresh."""

    async def close(self) -> None:
        """Release connections and threads."""

"""How purges end outside the purge path, as both backends write it: the expiry job's removals
(retention, maximum age), its convergence sweep (converged marks, until-applied removals) and
cancellation. Each end is recorded on the purge's history event, with its event in the same
transaction (the backends differ only in their placeholder)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from purgecache.events import model as events
from purgecache.events.model import OutboxEvent
from purgecache.model import CONVERGED, EXPIRED, PurgeRequest
from purgecache.storage import history
from purgecache.storage.history import EndRow

# Requests at or past `expires` (the retention, or an until-applied request's maximum age).
EXPIRE = (
    "DELETE FROM cache_purges WHERE expires <= {mark} "
    "RETURNING worker_pool_id, cache_name, before, expires, converged_at"
)
# What the convergence sweep looks at: open requests not yet converged, and until-applied
# ones past their normal retention (kept only until every active worker applied them).
UNSETTLED = (
    "SELECT worker_pool_id, cache_name, before, expires, until_applied, converged_at "
    "FROM cache_purges WHERE expires > {mark} "
    "AND (converged_at IS NULL OR until_applied <= {mark}) ORDER BY worker_pool_id, cache_name"
)
# Each guarded by `before`: a re-purge since the sweep read the row is a new purge, left alone.
MARK_CONVERGED = (
    "UPDATE cache_purges SET converged_at = {mark} WHERE worker_pool_id = {mark} "
    "AND cache_name = {mark} AND before = {mark} AND converged_at IS NULL"
)
REMOVE = (
    "DELETE FROM cache_purges WHERE worker_pool_id = {mark} AND cache_name = {mark} "
    "AND before = {mark}"
)
CANCEL = (
    "DELETE FROM cache_purges WHERE worker_pool_id = {mark} AND cache_name = {mark} "
    "AND expires > {mark} RETURNING before"
)
Unsettled = tuple[PurgeRequest, bool]  # an open request (with its policy), converged already


@dataclass(frozen=True, slots=True)
class Settled:
    """What the convergence sweep decided about one open purge."""

    request: PurgeRequest  # as read: only a row with this `before` is touched
    converged: OutboxEvent | None  # mark it converged now, sending this event
    end: str | None  # remove it now, for this reason (CONVERGED or EXPIRED)


def read_unsettled(row: tuple[Any, ...]) -> Unsettled:
    """An `UNSETTLED` row."""
    until_applied = None if row[4] is None else int(row[4])
    request = PurgeRequest(row[0], row[1], int(row[2]), int(row[3]), until_applied)
    return request, row[5] is not None


def expired(gone: list[tuple[Any, ...]], now: int) -> tuple[list[EndRow], list[OutboxEvent]]:
    """The history ends and `purge.expired` events of the rows `EXPIRE` deleted: each ended
    at its `expires`, converged if every active worker had applied it by then."""
    ends = [
        history.end_row(pool, cache, before, expires, EXPIRED if at is None else CONVERGED)
        for pool, cache, before, expires, at in gone
    ]
    sent = [events.expired(pool, cache, before, now) for pool, cache, before, _, _ in gone]
    return ends, sent


def removed(settled: Settled, now: int) -> tuple[EndRow, OutboxEvent | None]:
    """The history end of a request the sweep removed, and its `purge.expired` event when it
    went for want of active workers."""
    request = settled.request
    assert settled.end is not None
    key = (request.worker_pool_id, request.cache_name, request.before)
    sent = events.expired(*key, now) if settled.end == EXPIRED else None
    return history.end_row(*key, now, settled.end), sent


def guard(settled: Settled) -> tuple[str, str, int]:
    """The key and `before` a sweep's statement is guarded by."""
    request = settled.request
    return request.worker_pool_id, request.cache_name, request.before

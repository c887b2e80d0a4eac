"""Convergence: for each open purge of a pool, which active workers applied it, which only
fetched it, and which were not seen since (issue 13 item 5). The counting happens in the
database (`storage.fetches`: a pool may have 10,000 workers); this module defines the states
and shapes the `purgeStatus` answer. No I/O.

A worker is *active* when it reported (`reportWorkerSync`) or fetched (`purgeRequests` with
its own client id) within the activity window. A reporting worker has *applied* a purge
`(cache, B)` when its receipt for the cache honoured a `before` >= B (copies still in use are
counted apart); otherwise it is *fetched* when it reported after B (it read the purge and has
not confirmed it), else *not seen*. A client id that never reported is *fetched* once an answer
holding a `before` >= B was served to it, else *not seen*. Client ids that report are counted
by their workers' receipts only.

A purge is *applied everywhere* when the pool has active workers and every one applied it:
each reporting worker by receipt, each fetch-only client id by having been served it (it
cannot confirm more). That one definition decides `purge.converged` and when a purge kept
until applied may go (`settle`).
"""

from __future__ import annotations

from collections.abc import Sequence

from purgecache.events import model as events
from purgecache.model import CONVERGED, EXPIRED, PurgeRequest, format_time
from purgecache.storage.fetches import PurgeTally
from purgecache.storage.settling import Settled

# cache name, workers holding it, their copies, their bytes, the latest use (or None)
CacheRow = tuple[str, int, int, int, int | None]

STRAGGLERS_SHOWN = 100  # per purge; the rest are counted in `stragglersOmitted`


def _straggler(worker: str, identity: str, fetched: bool, last_seen: int) -> dict[str, object]:
    state = "fetched" if fetched else "notSeen"
    return {
        "worker": worker,
        "identity": identity,
        "state": state,
        "lastSeen": format_time(last_seen),
    }


def stragglers(before: int, tally: PurgeTally) -> list[dict[str, object]]:
    """The first STRAGGLERS_SHOWN workers that have not applied the purge: reporters by
    worker name, then fetching client ids by id."""
    shown = [
        _straggler(f"{group}/{worker}", "worker", seen >= before, seen)
        for group, worker, seen in tally.straggling
    ]
    shown += [
        _straggler(client, "clientId", served >= before, seen)
        for client, served, seen in tally.fetching[: STRAGGLERS_SHOWN - len(shown)]
    ]
    return shown


def applied_everywhere(tally: PurgeTally) -> bool | None:
    """Whether every active worker applied the purge (None: the pool has no active worker)."""
    reporters, applied = tally.reporters[0], tally.reporters[1]
    fetchers, served = tally.fetchers[0], tally.fetchers[1]
    if reporters + fetchers == 0:
        return None
    return applied == reporters and served == fetchers


def settle(purge: PurgeRequest, converged: bool, tally: PurgeTally, now: int) -> Settled | None:
    """What the expiry job's sweep does about an open purge (None: nothing yet). The first
    time it finds the purge applied everywhere it marks it converged and sends
    `purge.converged`. A purge kept until applied, past its normal retention, goes once it is
    applied everywhere (converged), or at once when the pool has no active worker (expired:
    the normal retention applies)."""
    everywhere = applied_everywhere(tally)
    key = (purge.worker_pool_id, purge.cache_name, purge.before)
    event = None
    if everywhere and not converged:
        event = events.converged(*key, now, tally.reporters[0] + tally.fetchers[0])
    end = None
    if purge.until_applied is not None and purge.until_applied <= now:
        end = EXPIRED if everywhere is None else CONVERGED if everywhere else None
    return None if event is None and end is None else Settled(purge, event, end)


def purge_wire(purge: PurgeRequest, tally: PurgeTally) -> dict[str, object]:
    """The purge's entry in a `purgeStatus` answer."""
    reporters, applied, in_use, deleted, freed, seen = tally.reporters
    fetchers, served = tally.fetchers
    fetched = seen + served
    not_seen = reporters - applied - seen + fetchers - served
    shown = stragglers(purge.before, tally)
    return {
        "cacheName": purge.cache_name,
        "before": format_time(purge.before),
        "activeWorkers": reporters + fetchers,
        "applied": applied,
        "appliedInUse": in_use,
        "fetched": fetched,
        "notSeen": not_seen,
        "instancesDeleted": deleted,
        "bytesFreed": freed,
        "stragglers": shown,
        "stragglersOmitted": fetched + not_seen - len(shown),
    } | ({} if purge.until_applied is None else {"untilApplied": True})


def pool_status(
    worker_pool_id: str,
    purges: Sequence[PurgeRequest],
    tallies: Sequence[PurgeTally],
    active_since: int,
) -> dict[str, object]:
    """The `purgeStatus` answer: each open purge of the pool (by cache name) and its tally."""
    return {
        "workerPoolId": worker_pool_id,
        "activeSince": format_time(active_since),
        "purges": [purge_wire(p, t) for p, t in zip(purges, tallies, strict=True)],
    }


def caches_wire(
    worker_pool_id: str, active_since: int, rows: Sequence[CacheRow]
) -> dict[str, object]:
    """The `poolCaches` answer: per cache name held by the pool's active workers, how many
    hold it, their copies and bytes, and the latest use."""
    caches = []
    for name, workers, instances, size, last_used in rows:
        cache: dict[str, object] = {"cacheName": name, "workers": workers}
        cache |= {"instances": instances, "bytes": size}
        if last_used is not None:
            cache["lastUsed"] = format_time(last_used)
        caches.append(cache)
    return {
        "workerPoolId": worker_pool_id,
        "activeSince": format_time(active_since),
        "caches": caches,
    }

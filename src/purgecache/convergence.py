"""Convergence: for each open purge of a pool, which active workers applied it, which only
fetched it, and which were not seen since (issue 13 item 5). Pure computation over the facts
storage read in one snapshot (`storage.fetches.PoolFacts`); no I/O.

A worker is *active* when it reported (`reportWorkerSync`) or fetched (`purgeRequests` with
its own client id) within the activity window. A reporting worker has *applied* a purge
`(cache, B)` when its receipt for the cache honoured a `before` >= B (copies still in use are
counted apart); otherwise it is *fetched* when it reported after B (it read the purge and has
not confirmed it), else *not seen*. A client id that never reported is *fetched* once an answer
holding a `before` >= B was served to it, else *not seen*. Client ids that report are counted
by their workers' receipts only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from purgecache.model import PurgeRequest, format_time
from purgecache.storage.fetches import PoolFacts, ReceiptFact

STRAGGLERS_SHOWN = 100  # per purge; the rest are counted in `stragglersOmitted`

Receipts = dict[tuple[str, str], ReceiptFact]


@dataclass(slots=True)
class PurgeConvergence:
    """The tally of one purge over the active workers."""

    purge: PurgeRequest
    active: int = 0
    applied: int = 0
    applied_in_use: int = 0
    fetched: int = 0
    not_seen: int = 0
    instances_deleted: int = 0
    bytes_freed: int = 0
    stragglers: list[dict[str, object]] = field(default_factory=list)

    def straggler(self, worker: str, identity: str, state: str, last_seen: int) -> None:
        """Count a worker that has not applied the purge, keeping the first few by name."""
        if state == "fetched":
            self.fetched += 1
        else:
            self.not_seen += 1
        if len(self.stragglers) < STRAGGLERS_SHOWN:
            self.stragglers.append(
                {
                    "worker": worker,
                    "identity": identity,
                    "state": state,
                    "lastSeen": format_time(last_seen),
                }
            )

    def to_wire(self) -> dict[str, object]:
        """The purge's entry in a `purgeStatus` answer."""
        shown = len(self.stragglers)
        return {
            "cacheName": self.purge.cache_name,
            "before": format_time(self.purge.before),
            "activeWorkers": self.active,
            "applied": self.applied,
            "appliedInUse": self.applied_in_use,
            "fetched": self.fetched,
            "notSeen": self.not_seen,
            "instancesDeleted": self.instances_deleted,
            "bytesFreed": self.bytes_freed,
            "stragglers": self.stragglers,
            "stragglersOmitted": self.fetched + self.not_seen - shown,
        }


def by_cache(receipts: Sequence[ReceiptFact]) -> dict[str, Receipts]:
    """Receipts by cache name, then by (worker group, worker id)."""
    found: dict[str, Receipts] = {}
    for receipt in receipts:
        found.setdefault(receipt[2], {})[(receipt[0], receipt[1])] = receipt
    return found


def converge(purge: PurgeRequest, facts: PoolFacts, receipts: Receipts) -> PurgeConvergence:
    """The tally of one purge: every active worker lands in exactly one state."""
    tally = PurgeConvergence(purge, active=len(facts.reported) + len(facts.fetchers))
    before = purge.before
    for group, worker, reported_at in facts.reported:
        receipt = receipts.get((group, worker))
        if receipt is not None and receipt[3] >= before:
            tally.applied += 1
            tally.applied_in_use += receipt[6] > 0
            tally.instances_deleted += receipt[4]
            tally.bytes_freed += receipt[5]
        else:
            state = "fetched" if reported_at >= before else "notSeen"
            tally.straggler(f"{group}/{worker}", "worker", state, reported_at)
    for client_id, fetched_before, seen_at in facts.fetchers:
        state = "fetched" if fetched_before >= before else "notSeen"
        tally.straggler(client_id, "clientId", state, seen_at)
    return tally


def pool_status(
    worker_pool_id: str, purges: Sequence[PurgeRequest], facts: PoolFacts, active_since: int
) -> dict[str, object]:
    """The `purgeStatus` answer: each open purge of the pool (by cache name) and its tally."""
    receipts = by_cache(facts.receipts)
    return {
        "workerPoolId": worker_pool_id,
        "activeSince": format_time(active_since),
        "purges": [converge(p, facts, receipts.get(p.cache_name, {})).to_wire() for p in purges],
    }

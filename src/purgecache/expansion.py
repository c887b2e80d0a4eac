"""A selector's expansion: the concrete (pool, cache name) pairs it matches today, what is
known of each (workers holding it, their bytes, where it was known from), the totals and the
digest a dry run shows and an apply quotes back (no I/O)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from purgecache.model import format_time
from purgecache.selectors import Selector, pairs_digest
from purgecache.storage.selectors import Candidate

MAX_PAIRS = 10_000  # an expansion past this is refused (400): narrow the selector
MAX_CANDIDATES = 100_000  # known pairs read for one expansion, before matching
SOURCES = ("inventory", "history", "requests")  # the order `knownFrom` lists them in


class TooManyPairs(ValueError):
    """The selector reaches more than an expansion may hold; the message says how to narrow it."""


@dataclass(frozen=True, slots=True)
class MatchedPair:
    """One (pool, cache name) pair a selector matches, with what is known of it."""

    worker_pool_id: str
    cache_name: str
    workers: frozenset[str]  # `group/id` of the active workers whose inventory lists it
    bytes: int
    known_from: tuple[str, ...]

    def to_wire(self) -> dict[str, object]:
        return {
            "workerPoolId": self.worker_pool_id,
            "cacheName": self.cache_name,
            "workers": len(self.workers),
            "bytes": self.bytes,
            "knownFrom": list(self.known_from),
        }


@dataclass(frozen=True, slots=True)
class Expansion:
    """The pairs a selector matches, sorted by pool and cache name."""

    selector: Selector
    pairs: tuple[MatchedPair, ...]

    @property
    def pools(self) -> list[str]:
        """The matched pools, sorted, each once."""
        return sorted({pair.worker_pool_id for pair in self.pairs})

    @property
    def keys(self) -> list[tuple[str, str]]:
        return [(pair.worker_pool_id, pair.cache_name) for pair in self.pairs]

    @property
    def digest(self) -> str:
        return pairs_digest(self.keys)

    def to_wire(self, dry_run: bool, threshold: int, before: int | None) -> dict[str, object]:
        """The `createSelectorPurge` answer (`before`: when applied)."""
        workers = {(pair.worker_pool_id, w) for pair in self.pairs for w in pair.workers}
        wire: dict[str, object] = {
            "selector": {
                "workerPoolPattern": self.selector.pool_pattern,
                "cacheNamePattern": self.selector.cache_pattern,
            },
            "dryRun": dry_run,
            "applied": before is not None,
            "pairs": [pair.to_wire() for pair in self.pairs],
            "totals": {
                "pairs": len(self.pairs),
                "pools": len(self.pools),
                "workers": len(workers),
                "bytes": sum(pair.bytes for pair in self.pairs),
            },
            "digest": self.digest,
            "confirmThreshold": threshold,
        }
        if before is not None:
            wire["before"] = format_time(before)
        return wire


def expand(selector: Selector, candidates: Iterable[Candidate]) -> Expansion:
    """The pairs among `candidates` the selector matches, merged per pair; TooManyPairs past
    MAX_PAIRS."""
    found: dict[tuple[str, str], tuple[set[str], list[int], set[str]]] = {}
    for candidate in candidates:
        key = (candidate.worker_pool_id, candidate.cache_name)
        known = found.get(key)
        if known is None:
            if not selector.matches(*key):
                continue
            known = found[key] = (set(), [0], set())
            if len(found) > MAX_PAIRS:
                raise TooManyPairs(
                    f"the selector matches more than {MAX_PAIRS} (pool, cache name) pairs; "
                    "narrow its patterns"
                )
        workers, size, sources = known
        if candidate.worker is not None:
            workers.add(candidate.worker)
            size[0] += candidate.bytes
        sources.add(candidate.known_from)
    pairs = tuple(
        MatchedPair(pool, cache, frozenset(w), size[0], tuple(s for s in SOURCES if s in sources))
        for (pool, cache), (w, size, sources) in sorted(found.items())
    )
    return Expansion(selector, pairs)

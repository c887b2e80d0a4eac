"""One sync: ask the service for the pool's purge requests since the watermark (minus the
clock-skew slack), check the answer against the worker's clocks, apply it to the registry,
advance the watermark, remove what was purged.

The watermark is the service's time up to which every purge request has been handled: the
`Date` of the answer that brought them (or, from a service that sends no `Date`, the latest
`before` in it), never later than the worker's own estimate of the service's clock, and only
from an answer that passed the checks of `evidence.py`. It is persisted only together with the
requests themselves, after they were recorded in the registry; a sync that fails before that
changes nothing, so the next one asks again from the same point. The slack makes the next sync
ask a little further back than the watermark: it covers answers the service served from its
cache (`--cache-time`), replicas whose clocks differ, and the `Date` header's whole seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from purgecache.agent.evidence import check_befores, weigh
from purgecache.agent.registry import CacheRegistry
from purgecache.agent.selectors import Source, local_requests
from purgecache.agent.settings import DEFAULT_CLOCK_SKEW_MS
from purgecache.agent.state import load_state
from purgecache.agent.trash import Emptied, Problem
from purgecache.model import format_time

if TYPE_CHECKING:
    from purgecache.agent.fetch import Fetch


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What one sync did."""

    pool: str
    since: int | None  # ms, what was asked for (None: every open request)
    requests: int
    deleted: tuple[Path, ...]  # instances (as they were named) now gone, leftovers too
    doomed: tuple[Path, ...]  # instances in use: deleted on release
    problems: tuple[Problem, ...]  # instances that could not be moved aside or removed
    watermark: int | None  # ms, after the sync
    reclaimed: tuple[Path, ...] = ()  # instances free again: their tasks ended unreleased

    @property
    def exit_code(self) -> int:
        """0 when every purged instance is gone (or marked, if in use), else 1."""
        return 1 if self.problems else 0

    @property
    def eventful(self) -> bool:
        """Whether it may have changed the receipts: it received purge requests, or deleted,
        marked, reclaimed or failed anything."""
        return bool(self.requests or self.deleted or self.doomed or self.problems or self.reclaimed)

    def summary(self) -> str:
        """One line for logs."""
        watermark = "none" if self.watermark is None else format_time(self.watermark)
        return (
            f"sync {self.pool}: {self.requests} purge request(s), {len(self.deleted)} "
            f"instance(s) deleted, {len(self.doomed)} in use (deleted on release), "
            f"{len(self.reclaimed)} lease(s) of ended tasks reclaimed, "
            f"{len(self.problems)} failed; watermark {watermark}"
        )


def sync_once(
    registry: CacheRegistry,
    fetch: Fetch,
    pool: str,
    *,
    slack_ms: int = DEFAULT_CLOCK_SKEW_MS,
    stop: Callable[[], bool] = lambda: False,
    selectors: Source | None = None,
) -> SyncReport:
    """Sync `pool` once; `FetchFailed` (from `fetch`, or `ImplausibleAnswer` from checking
    its answer) means nothing was changed. `selectors` (the pool's applied selectors, when
    due) add a request for each local cache whose name one matches."""
    registry.make_root()
    state = load_state(registry.layout.state)
    watermark = state.watermarks.get(pool)
    since = None if watermark is None else watermark - slack_ms
    fetched = fetch(pool, since if since is None or since > 0 else None)
    trusted = weigh(fetched, state.anchor, registry.clock, slack_ms)
    requests = fetched.requests
    if selectors is not None:
        found = selectors(pool)
        if found:
            selected = tuple(local_requests(found, registry.cache_names()))
            check_befores(selected, trusted.now_ms, slack_ms)  # as the answer's own requests
            requests += selected
    outcome = registry.apply_purges(requests, pool, trusted.watermark, trusted.anchor)
    emptied = registry.empty_trash(stop)
    return SyncReport(
        pool,
        since,
        len(requests),
        _deleted(registry, outcome.moved, emptied),
        outcome.doomed,
        outcome.problems + emptied.problems,
        outcome.watermark,
        outcome.reclaimed,
    )


def _deleted(
    registry: CacheRegistry, moved: tuple[Path, ...], emptied: Emptied
) -> tuple[Path, ...]:
    """The instances gone: those this sync moved aside (unless their removal failed; another
    process may be finishing it), then leftovers of earlier runs that it removed."""
    failed = {problem.path for problem in emptied.problems}
    trashed = {registry.layout.trash_path(path) for path in moved}
    leftovers = (registry.layout.trashed_instance(e) for e in emptied.removed if e not in trashed)
    return tuple(p for p in moved if registry.layout.trash_path(p) not in failed) + tuple(
        p for p in leftovers if p is not None
    )

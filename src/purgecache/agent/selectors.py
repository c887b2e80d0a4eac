"""Selectors on the worker: the applied selectors of the pool (`listPoolSelectors`) turned
into purge requests for the caches this worker holds whose names match, so that a selector
reaches caches the service never heard of (no inventory listed them, nobody purged them by
name). Each becomes an ordinary `(cache_name, before)` request: the registry deletes the
instances created before `before`, marks those in use, and the receipts count them as usual.

The pairs the service knew were purged by name when the selector was applied, and reach the
worker through `purgeRequests` at once; the rest waits for the next look at the selectors,
at most every `SELECTOR_INTERVAL_MS`, so that a sync with nothing to do still costs one
request. Each look asks for every open selector (they are few, and applying one again
changes nothing), so no watermark is needed. A service without the endpoint (upstream
Taskcluster: 404) or credentials without the pool's `purge-requests` scope for it (403) are
logged once, then the agent leaves it alone for an hour, doubling up to a day (the reports'
ledger, in its own file); the sync goes on with the purge requests alone. Any other failure
fails the sync before it changed anything (`ServiceUnreachable`), as a failed `purgeRequests`
does: the next sync asks again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from purgecache.agent.errors import ServiceUnreachable
from purgecache.selectors import PatternError, compile_pattern

if TYPE_CHECKING:
    from purgecache.agent.report import Ledger
    from purgecache.client import ApiError

log = logging.getLogger(__name__)

SELECTORS_FILE = "selectors.json"
SELECTOR_INTERVAL_MS = 60_000


class LocalSelector(NamedTuple):
    """An applied selector as the agent applies it: to the local caches whose names match
    `cache_pattern`, but those withdrawn from it (their purge was cancelled by name)."""

    cache_pattern: str
    before: int
    withdrawn: frozenset[str] = frozenset()


Source = Callable[[str], Sequence[tuple[str, int] | LocalSelector]]


class PoolSelectors:
    """Asks `source` for a pool's selectors when due, minding refusals (see the module)."""

    def __init__(
        self,
        root: Path,
        source: Source,
        now_ms: Callable[[], int],
        interval_ms: int = SELECTOR_INTERVAL_MS,
    ) -> None:
        self.root = root
        self.source = source
        self.now_ms = now_ms
        self.interval_ms = interval_ms

    def __call__(self, pool: str) -> Sequence[tuple[str, int] | LocalSelector]:
        """The open selectors (cache-name pattern, before, names withdrawn); none while
        refused or not due."""
        from purgecache.agent.report import REFUSED_STATUSES, load_ledger, save_ledger
        from purgecache.client import ApiError, PurgeCacheError

        ledger = load_ledger(self.root, pool, SELECTORS_FILE)
        now = self.now_ms()
        if now < ledger.quiet_until or 0 <= now - ledger.sent_at < self.interval_ms:
            return ()
        try:
            found = self.source(pool)
        except ApiError as error:
            if error.status not in REFUSED_STATUSES:
                raise ServiceUnreachable(f"listPoolSelectors: {error.summary}") from error
            self._refused(pool, ledger, error, now)
            return ()
        except PurgeCacheError as error:
            raise ServiceUnreachable(f"listPoolSelectors: {error}") from error
        save_ledger(self.root, pool, ledger.sent("", now), SELECTORS_FILE)
        return found

    def _refused(self, pool: str, ledger: Ledger, error: ApiError, now: int) -> None:
        from purgecache.agent.report import save_ledger

        why = "the service has no listPoolSelectors" if error.status == 404 else "refused"
        text = (
            f"selectors not read ({why}: {error.summary}); syncs go on with purge requests "
            "alone, selectors are asked for again in an hour or more"
        )
        log.log(logging.WARNING if ledger.refusals == 0 else logging.INFO, "%s", text)
        refused = replace(ledger.refused(text, now), shown=True)  # logged as it happened
        save_ledger(self.root, pool, refused, SELECTORS_FILE)


def local_requests(
    selectors: Iterable[tuple[str, int] | LocalSelector], cache_names: Iterable[str]
) -> list[tuple[str, int]]:
    """A `(cache_name, before)` request for each local cache name a selector's cache-name
    pattern matches, but the names withdrawn from it (a pattern this agent cannot read is
    skipped, with a warning)."""
    names = list(cache_names)
    requests: list[tuple[str, int]] = []
    for pattern, before, withdrawn in (LocalSelector(*selector) for selector in selectors):
        try:
            matcher = compile_pattern(pattern)
        except PatternError as error:
            log.warning("selector skipped: %s", error)
            continue
        requests += [
            (name, before) for name in names if matcher.fullmatch(name) and name not in withdrawn
        ]
    return requests

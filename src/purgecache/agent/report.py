"""Sending a worker's receipts and inventory (`reportWorkerSync`), and when.

A report follows a sync whose receipts changed, and otherwise at most every report interval.
What was last sent, and a refusal, are kept per pool in `report.json` (not durable: losing it
costs one report more). A service without the endpoint (upstream Taskcluster: 404) or
credentials without the report scope (403) are announced once, then the agent leaves it
alone for an hour, doubling up to a day; its syncs go on exactly as before. Any other failure
is forgotten: the next sync tries again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from purgecache.agent.files import CorruptFile, read_json, write_json_atomic
from purgecache.agent.receipts import Held, Receipt, Stock, take_stock
from purgecache.agent.registry import CacheRegistry
from purgecache.client import (
    ApiError,
    CacheInventory,
    CacheReceipt,
    PurgeCache,
    PurgeCacheError,
    Retries,
)

log = logging.getLogger(__name__)

REPORT_FILE = "report.json"
REFUSED_FIRST_MS = 3_600_000  # after a 403/404: an hour, doubling ...
REFUSED_MAX_MS = 86_400_000  # ... up to a day
REFUSED_STATUSES = (403, 404)
# One quick retry: a report never holds up anything, and the next sync sends it again.
REPORT_RETRIES = Retries(max_retries=1, base_delay=0.2, max_delay=1.0)


@dataclass(frozen=True, slots=True)
class Ledger:
    """One pool's memory of reports: what was last sent and when (ms, worker clock), and
    the last refusal: until when to keep quiet, how many in a row, whether it was shown."""

    sent_at: int = 0
    digest: str = ""
    quiet_until: int = 0
    refusals: int = 0
    refusal: str = ""  # the last refusal's text, until it was shown
    shown: bool = True

    def due(self, digest: str, now_ms: int, interval_ms: int) -> bool:
        """Whether to report now: not while refused; on new receipts; after the interval."""
        if now_ms < self.quiet_until:
            return False
        return digest != self.digest or now_ms - self.sent_at >= interval_ms

    def sent(self, digest: str, now_ms: int) -> Ledger:
        return Ledger(now_ms, digest)

    def refused(self, text: str, now_ms: int) -> Ledger:
        wait = min(REFUSED_FIRST_MS * 2**self.refusals, REFUSED_MAX_MS)
        first = self.refusals == 0
        return replace(
            self,
            quiet_until=now_ms + wait,
            refusals=self.refusals + 1,
            refusal=text,
            shown=not first,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "sent_at": self.sent_at,
            "digest": self.digest,
            "quiet_until": self.quiet_until,
            "refusals": self.refusals,
            "refusal": self.refusal,
            "shown": self.shown,
        }

    @classmethod
    def from_json(cls, data: object) -> Ledger:
        if not isinstance(data, dict):
            return cls()
        fresh = cls()
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if any(type(v) is not type(getattr(fresh, k)) for k, v in fields.items()):
            return fresh  # not written by this agent: start again (one report more)
        return replace(fresh, **fields)


def load_ledger(root: Path, pool: str, name: str = REPORT_FILE) -> Ledger:
    """The pool's ledger in the file `name` (a fresh one if it is missing or unreadable)."""
    try:
        data = read_json(root / name) or {}
    except (CorruptFile, OSError):
        data = {}
    return Ledger.from_json(data.get(pool))


def save_ledger(root: Path, pool: str, ledger: Ledger, name: str = REPORT_FILE) -> None:
    """Keep the pool's ledger in the file `name` (failures are logged: at worst a report is
    repeated)."""
    path = root / name
    try:
        data = read_json(path) or {}
    except (CorruptFile, OSError):
        data = {}
    data[pool] = ledger.to_json()
    try:
        write_json_atomic(path, data, durable=False)
    except OSError as error:
        log.warning("could not write %s: %s", path, error)


def announce(root: Path, pool: str) -> str | None:
    """A refusal not shown yet, once (marked shown): for the foreground command to print."""
    ledger = load_ledger(root, pool)
    if ledger.shown or not ledger.refusal:
        return None
    save_ledger(root, pool, replace(ledger, shown=True))
    return ledger.refusal


@dataclass(frozen=True, slots=True)
class Identity:
    """Who reports: the worker's group and id in its pool."""

    worker_group: str
    worker_id: str


def due(registry: CacheRegistry, pool: str, interval_ms: int, eventful: bool) -> Stock | None:
    """The stock to report now, or None if no report is due (see `Ledger.due`). After an
    uneventful sync within the interval the records are not even read."""
    ledger = load_ledger(registry.layout.root, pool)
    now = registry.clock.wall_ms()
    if not eventful and not ledger.due(ledger.digest, now, interval_ms):
        return None
    stock = take_stock(registry)
    return stock if ledger.due(stock.digest(), now, interval_ms) else None


def send(client: PurgeCache, pool: str, who: Identity, stock: Stock) -> None:
    """One `reportWorkerSync` (PurgeCacheError as the client raises it)."""
    client.report_worker_sync(
        pool,
        who.worker_group,
        who.worker_id,
        [_receipt(r) for r in stock.receipts],
        [_inventory(h) for h in stock.held],
    )


def report(
    client: PurgeCache, root: Path, pool: str, who: Identity, stock: Stock, now_ms: int
) -> Ledger:
    """Send the report and record the outcome; never raises for the service's sake."""
    ledger = load_ledger(root, pool)
    try:
        send(client, pool, who, stock)
    except ApiError as error:
        if error.status not in REFUSED_STATUSES:
            log.warning("reportWorkerSync failed, the next sync tries again: %s", error.summary)
            return ledger
        ledger = ledger.refused(_refusal(error), now_ms)
    except PurgeCacheError as error:
        log.warning("reportWorkerSync failed, the next sync tries again: %s", error)
        return ledger
    else:
        ledger = ledger.sent(stock.digest(), now_ms)
    save_ledger(root, pool, ledger)
    return ledger


def _refusal(error: ApiError) -> str:
    why = "the service has no reportWorkerSync" if error.status == 404 else "refused"
    return (
        f"receipts not sent ({why}: {error.summary}); syncs go on as before, "
        "the next report is tried in an hour or more"
    )


def _when(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _receipt(receipt: Receipt) -> CacheReceipt:
    return CacheReceipt(
        receipt.cache_name,
        _when(receipt.honoured_before),
        receipt.deleted,
        receipt.bytes_freed,
        receipt.oldest_deleted_age_ms,
        receipt.failures,
        receipt.in_use,
    )


def _inventory(held: Held) -> CacheInventory:
    last = None if held.last_used is None else _when(held.last_used)
    return CacheInventory(held.cache_name, held.instances, held.bytes, last)

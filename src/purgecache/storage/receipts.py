"""Workers' receipts as both backends write and read them: the rows of a report and the SQL
(the backends differ only in their placeholder)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from purgecache.events import model as events
from purgecache.events.model import OutboxEvent
from purgecache.model import CacheInventory, CacheReceipt, WorkerReport

_KEY = "worker_pool_id, worker_group, worker_id"
COLUMNS = (
    f"{_KEY}, cache_name, honoured_before, instances_deleted, bytes_freed, "
    "oldest_deleted_age_ms, failures, in_use, reported_at"
)
# A receipt for a later (or the same) `before` replaces the stored one; an older one is
# ignored: replaying a report, or one overtaken by a newer, changes nothing.
UPSERT_RECEIPT = (
    f"INSERT INTO worker_receipts ({COLUMNS}) VALUES ({{marks}}) "
    f"ON CONFLICT ({_KEY}, cache_name) DO UPDATE SET "
    "honoured_before = excluded.honoured_before, "
    "instances_deleted = excluded.instances_deleted, bytes_freed = excluded.bytes_freed, "
    "oldest_deleted_age_ms = excluded.oldest_deleted_age_ms, failures = excluded.failures, "
    "in_use = excluded.in_use, reported_at = excluded.reported_at "
    "WHERE excluded.honoured_before >= worker_receipts.honoured_before"
)
UPSERT_WORKER = (
    f"INSERT INTO worker_reports ({_KEY}, reported_at) VALUES ({{marks}}) "
    f"ON CONFLICT ({_KEY}) DO UPDATE SET reported_at = excluded.reported_at "
    "WHERE excluded.reported_at > worker_reports.reported_at"
)
RECEIPTS = (
    f"SELECT {COLUMNS} FROM worker_receipts WHERE worker_pool_id = {{mark}} "
    "ORDER BY worker_group, worker_id, cache_name"
)
# A report with an inventory replaces the worker's: its rows go, the report's come.
INVENTORY_COLUMNS = f"{_KEY}, cache_name, instances, bytes, last_used, reported_at"
CLEAR_INVENTORY = (
    "DELETE FROM worker_caches WHERE worker_pool_id = {mark} AND worker_group = {mark} "
    "AND worker_id = {mark}"
)
INSERT_INVENTORY = f"INSERT INTO worker_caches ({INVENTORY_COLUMNS}) VALUES ({{marks}})"
INVENTORY = (
    f"SELECT {INVENTORY_COLUMNS} FROM worker_caches WHERE worker_pool_id = {{mark}} "
    "ORDER BY worker_group, worker_id, cache_name"
)
ReceiptRow = tuple[str, str, str, str, int, int, int, int | None, int, int, int]
WorkerRow = tuple[str, str, str, int]
InventoryRow = tuple[str, str, str, str, int, int, int | None, int]


@dataclass(frozen=True, slots=True)
class Reported:
    """The rows one report writes: its receipts, the worker's, and its inventory (None:
    the report had none, the stored one stays)."""

    receipts: list[ReceiptRow]
    worker: WorkerRow
    inventory: list[InventoryRow] | None
    report: WorkerReport  # what its purge.applied events are made of, should they be kept
    now: int


@dataclass(frozen=True, slots=True)
class StoredInventory:
    """What a worker holds of one cache name, as stored, with when it was reported."""

    worker_group: str
    worker_id: str
    inventory: CacheInventory
    reported_at: int


@dataclass(frozen=True, slots=True)
class StoredReceipt:
    """A worker's receipt for one cache name, as stored, with when it was reported."""

    worker_group: str
    worker_id: str
    receipt: CacheReceipt
    reported_at: int


def report_rows(report: WorkerReport, now: int) -> Reported:
    """The rows a report writes: one per cache name, the worker's, and its inventory's."""
    key = (report.worker_pool_id, report.worker_group, report.worker_id)
    receipts = [
        (
            *key,
            c.cache_name,
            c.honoured_before,
            c.instances_deleted,
            c.bytes_freed,
            c.oldest_deleted_age_ms,
            c.failures,
            c.in_use,
            now,
        )
        for c in report.caches
    ]
    inventory = None
    if report.inventory is not None:
        inventory = [
            (*key, c.cache_name, c.instances, c.bytes, c.last_used, now) for c in report.inventory
        ]
    return Reported(receipts, (*key, now), inventory, report, now)


def applied_events(batch: list[Reported]) -> list[OutboxEvent]:
    """A `purge.applied` event per receipt of a batch of reports: made only when an event
    target is registered (the backends look in the batch's transaction), since making them
    cost more than writing the receipts."""
    return [
        events.applied(reported.report, receipt, reported.now)
        for reported in batch
        for receipt in reported.report.caches
    ]


def read_receipt(row: tuple[Any, ...]) -> StoredReceipt:
    """A receipt from a `RECEIPTS` row."""
    receipt = CacheReceipt(row[3], row[4], row[5], row[6], row[7], row[8], row[9])
    return StoredReceipt(row[1], row[2], receipt, int(row[10]))


def read_inventory(row: tuple[Any, ...]) -> StoredInventory:
    """An inventory entry from an `INVENTORY` row."""
    held = CacheInventory(row[3], int(row[4]), int(row[5]), None if row[6] is None else int(row[6]))
    return StoredInventory(row[1], row[2], held, int(row[7]))


def inventories(batch: list[Reported]) -> tuple[list[tuple[str, str, str]], list[InventoryRow]]:
    """A batch's inventory writes: the workers whose rows go, and the rows that come (a
    worker's last report in the batch wins)."""
    latest: dict[tuple[str, str, str], list[InventoryRow]] = {}
    for reported in batch:
        if reported.inventory is not None:
            latest[reported.worker[:3]] = reported.inventory
    return list(latest), [row for rows in latest.values() for row in rows]

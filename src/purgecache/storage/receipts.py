"""Workers' receipts as both backends write and read them: the rows of a report and the SQL
(the backends differ only in their placeholder)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from purgecache.model import CacheReceipt, WorkerReport

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
ReceiptRow = tuple[str, str, str, str, int, int, int, int | None, int, int, int]
WorkerRow = tuple[str, str, str, int]


@dataclass(frozen=True, slots=True)
class StoredReceipt:
    """A worker's receipt for one cache name, as stored, with when it was reported."""

    worker_group: str
    worker_id: str
    receipt: CacheReceipt
    reported_at: int


def report_rows(report: WorkerReport, now: int) -> tuple[list[ReceiptRow], WorkerRow]:
    """The rows a report writes: one per cache name, and the worker's."""
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
    return receipts, (*key, now)


def read_receipt(row: tuple[Any, ...]) -> StoredReceipt:
    """A receipt from a `RECEIPTS` row."""
    receipt = CacheReceipt(row[3], row[4], row[5], row[6], row[7], row[8], row[9])
    return StoredReceipt(row[1], row[2], receipt, int(row[10]))

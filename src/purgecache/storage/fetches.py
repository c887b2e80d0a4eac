"""Fetches and the pool facts convergence is computed from, as both backends write and read
them (the backends differ only in their placeholder)."""

from __future__ import annotations

from dataclasses import dataclass

FetchRow = tuple[str, str, int, int, int]  # pool, client id, fetched before, seen at, reports

# The newest of each value wins: flushes from several processes may arrive in any order.
UPSERT_FETCH = (
    "INSERT INTO worker_fetches (worker_pool_id, client_id, fetched_before, seen_at, reports) "
    "VALUES ({marks}) ON CONFLICT (worker_pool_id, client_id) DO UPDATE SET "
    "fetched_before = CASE WHEN excluded.fetched_before > worker_fetches.fetched_before "
    "THEN excluded.fetched_before ELSE worker_fetches.fetched_before END, "
    "seen_at = CASE WHEN excluded.seen_at > worker_fetches.seen_at "
    "THEN excluded.seen_at ELSE worker_fetches.seen_at END, "
    "reports = CASE WHEN excluded.reports > worker_fetches.reports "
    "THEN excluded.reports ELSE worker_fetches.reports END"
)
# Everything a pool's convergence view reads, each filtered to the active workers.
WORKERS = (
    "SELECT worker_group, worker_id, reported_at FROM worker_reports "
    "WHERE worker_pool_id = {mark} AND reported_at >= {mark} ORDER BY worker_group, worker_id"
)
FETCHERS = (
    "SELECT client_id, fetched_before, seen_at FROM worker_fetches "
    "WHERE worker_pool_id = {mark} AND seen_at >= {mark} AND reports = 0 ORDER BY client_id"
)
CACHE_RECEIPTS = (
    "SELECT worker_group, worker_id, cache_name, honoured_before, instances_deleted, "
    "bytes_freed, in_use FROM worker_receipts WHERE worker_pool_id = {mark} "
    "AND cache_name = {mark}"
)
POOL_RECEIPTS = (
    "SELECT worker_group, worker_id, cache_name, honoured_before, instances_deleted, "
    "bytes_freed, in_use FROM worker_receipts WHERE worker_pool_id = {mark}"
)
# Workers not heard from since the cut-off go, their receipts with them.
PRUNE = (
    "DELETE FROM worker_fetches WHERE seen_at < {mark}",
    "DELETE FROM worker_receipts WHERE (worker_pool_id, worker_group, worker_id) IN "
    "(SELECT worker_pool_id, worker_group, worker_id FROM worker_reports "
    "WHERE reported_at < {mark})",
    "DELETE FROM worker_reports WHERE reported_at < {mark}",
)

ReportedRow = tuple[str, str, int]  # worker group, worker id, reported at
FetcherRow = tuple[str, int, int]  # client id, fetched before, seen at
# worker group, worker id, cache name, honoured before, instances deleted, bytes freed, in use
ReceiptFact = tuple[str, str, str, int, int, int, int]


@dataclass(frozen=True, slots=True)
class PoolFacts:
    """What a pool's active workers said and fetched, read in one snapshot: workers that
    reported (group, id, when), client ids that only fetched (id, newest `before` served, last
    seen) and the receipts of the cache names asked about."""

    reported: list[ReportedRow]
    fetchers: list[FetcherRow]
    receipts: list[ReceiptFact]


def facts_queries(mark: str) -> tuple[str, str, str, str]:
    """The backend's spelling of WORKERS, FETCHERS, CACHE_RECEIPTS and POOL_RECEIPTS."""
    return (
        WORKERS.format(mark=mark),
        FETCHERS.format(mark=mark),
        CACHE_RECEIPTS.format(mark=mark),
        POOL_RECEIPTS.format(mark=mark),
    )

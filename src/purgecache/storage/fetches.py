"""Fetches, purge tallies and worker pruning, as both backends write and read them (the
backends differ only in their placeholders)."""

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
# A purge's tally, in the database (a pool may have 10,000 workers): placeholders are named
# ({pool}, {cache}, {before}, {since}, {limit}) and spelt by each backend.
_REPORTERS = (
    "FROM worker_reports w LEFT JOIN worker_receipts r ON r.worker_pool_id = w.worker_pool_id "
    "AND r.worker_group = w.worker_group AND r.worker_id = w.worker_id "
    "AND r.cache_name = {cache} WHERE w.worker_pool_id = {pool} AND w.reported_at >= {since}"
)
_APPLIED = "r.honoured_before >= {before}"
_NOT_APPLIED = "(r.honoured_before IS NULL OR r.honoured_before < {before})"
TALLY_REPORTERS = (
    f"SELECT count(*), "
    f"coalesce(sum(CASE WHEN {_APPLIED} THEN 1 ELSE 0 END), 0), "
    f"coalesce(sum(CASE WHEN {_APPLIED} AND r.in_use > 0 THEN 1 ELSE 0 END), 0), "
    f"coalesce(sum(CASE WHEN {_APPLIED} THEN r.instances_deleted ELSE 0 END), 0), "
    f"coalesce(sum(CASE WHEN {_APPLIED} THEN r.bytes_freed ELSE 0 END), 0), "
    f"coalesce(sum(CASE WHEN {_NOT_APPLIED} AND w.reported_at >= {{before}} THEN 1 ELSE 0 END), 0) "
    f"{_REPORTERS}"
)
STRAGGLING_REPORTERS = (
    f"SELECT w.worker_group, w.worker_id, w.reported_at {_REPORTERS} AND {_NOT_APPLIED} "
    "ORDER BY w.worker_group, w.worker_id LIMIT {limit}"
)
_FETCHERS = (
    "FROM worker_fetches WHERE worker_pool_id = {pool} AND seen_at >= {since} AND reports = 0"
)
TALLY_FETCHERS = (
    "SELECT count(*), coalesce(sum(CASE WHEN fetched_before >= {before} THEN 1 ELSE 0 END), 0) "
    + _FETCHERS
)
STRAGGLING_FETCHERS = (
    f"SELECT client_id, fetched_before, seen_at {_FETCHERS} ORDER BY client_id LIMIT {{limit}}"
)
TALLY_QUERIES = (TALLY_REPORTERS, STRAGGLING_REPORTERS, TALLY_FETCHERS, STRAGGLING_FETCHERS)
NAMES = ("pool", "cache", "before", "since", "limit")
# Workers not heard from since the cut-off go, their receipts with them.
PRUNE = (
    "DELETE FROM worker_fetches WHERE seen_at < {mark}",
    "DELETE FROM worker_caches WHERE (worker_pool_id, worker_group, worker_id) IN "
    "(SELECT worker_pool_id, worker_group, worker_id FROM worker_reports "
    "WHERE reported_at < {mark})",
    "DELETE FROM worker_receipts WHERE (worker_pool_id, worker_group, worker_id) IN "
    "(SELECT worker_pool_id, worker_group, worker_id FROM worker_reports "
    "WHERE reported_at < {mark})",
    "DELETE FROM worker_reports WHERE reported_at < {mark}",
)

ReportedRow = tuple[str, str, int]  # worker group, worker id, reported at
FetcherRow = tuple[str, int, int]  # client id, fetched before, seen at


def spelt(style: str) -> tuple[str, ...]:
    """TALLY_QUERIES with the backend's named placeholders (`style` % name: `:%s`, `%%(%s)s`)."""
    marks = {name: style % name for name in NAMES}
    return tuple(query.format(**marks) for query in TALLY_QUERIES)


@dataclass(frozen=True, slots=True)
class PurgeTally:
    """One purge over a pool's active workers, counted in the database: reporters (how many,
    applied, of those with copies in use, copies deleted and bytes freed by the applied, seen
    since the purge without applying it), the first stragglers among them, client ids that
    only fetch (how many, how many were served the purge) and the first of them."""

    reporters: tuple[int, ...]  # active, applied, in use, deleted, freed, fetched
    straggling: list[ReportedRow]
    fetchers: tuple[int, ...]  # active, served the purge
    fetching: list[FetcherRow]

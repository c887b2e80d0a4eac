"""Selector purges as both backends read and write them: the (pool, cache name) pairs a
selector may mean, from the inventory, the history and the open requests, and the applied
selectors agents read (the backends differ only in their placeholder)."""

from __future__ import annotations

from typing import NamedTuple

# Every pool id is printable ASCII, so [prefix, prefix + DEL) holds every id starting with
# prefix: a range an index on the pool id can walk.
PAST_PREFIX = "\x7f"
_POOLS = "worker_pool_id >= {m} AND worker_pool_id < {m}"
# Known pairs of the pools in a prefix range, each row saying where it was known from (a
# pair known from several places has several rows): the inventory of workers active since
# a time (a row per worker holding it, with its bytes), the history, the open requests.
CANDIDATES = (
    "SELECT worker_pool_id, cache_name, 'inventory', worker_group || '/' || worker_id, bytes "
    f"FROM worker_caches WHERE {_POOLS} AND reported_at >= {{m}} "
    "UNION ALL "
    "SELECT DISTINCT worker_pool_id, cache_name, 'history', NULL, 0 FROM purge_history "
    f"WHERE {_POOLS} "
    "UNION ALL "
    "SELECT worker_pool_id, cache_name, 'requests', NULL, 0 FROM cache_purges "
    f"WHERE {_POOLS} AND expires > {{m}} LIMIT {{m}}"
)
UPSERT_SELECTOR = (
    "INSERT INTO purge_selectors (worker_pool_pattern, cache_name_pattern, pool_prefix, "
    "before, expires) VALUES ({m}, {m}, {m}, {m}, {m}) "
    "ON CONFLICT (worker_pool_pattern, cache_name_pattern) DO UPDATE SET "
    "before = excluded.before, expires = excluded.expires"
)
# The open selectors that may match a pool (their prefix starts it), newest first.
POOL_SELECTORS = (
    "SELECT worker_pool_pattern, cache_name_pattern, before FROM purge_selectors "
    "WHERE expires > {m} AND before >= {m} "
    "AND substr(CAST({m} AS text), 1, length(pool_prefix)) = pool_prefix "
    "ORDER BY before DESC, worker_pool_pattern, cache_name_pattern LIMIT {m}"
)
EXPIRE = "DELETE FROM purge_selectors WHERE expires <= {m}"
# Cancelling an applied selector: its `before` while it is open, the pairs whose open purge it
# wrote (their history event names it, at its `before`), then it goes (guarded by that
# `before`: one applied again meanwhile is a new selector) with each of those purges.
OPEN_SELECTOR = (
    "SELECT before FROM purge_selectors WHERE worker_pool_pattern = {m} "
    "AND cache_name_pattern = {m} AND expires > {m}"
)
SELECTOR_PAIRS = (
    "SELECT h.worker_pool_id, h.cache_name FROM purge_history AS h JOIN cache_purges AS c "
    "ON c.worker_pool_id = h.worker_pool_id AND c.cache_name = h.cache_name "
    "AND c.before = h.purged_at WHERE h.purged_at = {m} AND h.selector_pool_pattern = {m} "
    "AND h.selector_cache_pattern = {m} AND c.expires > {m} ORDER BY 1, 2"
)
WITHDRAW = (
    "DELETE FROM purge_selectors WHERE worker_pool_pattern = {m} AND cache_name_pattern = {m} "
    "AND before = {m} AND expires > {m}"
)
# A pair withdrawn from an open selector (its purge was cancelled by name), and the open
# selectors' withdrawn pairs of one pool; the rows of selectors no longer open go at expiry.
EXCEPT = (
    "INSERT INTO purge_selector_exceptions (worker_pool_pattern, cache_name_pattern, before, "
    "worker_pool_id, cache_name) VALUES ({m}, {m}, {m}, {m}, {m}) ON CONFLICT DO NOTHING"
)
POOL_EXCEPTIONS = (
    "SELECT e.worker_pool_pattern, e.cache_name_pattern, e.before, e.cache_name "
    "FROM purge_selector_exceptions AS e JOIN purge_selectors AS s "
    "ON s.worker_pool_pattern = e.worker_pool_pattern "
    "AND s.cache_name_pattern = e.cache_name_pattern AND s.before = e.before "
    "WHERE e.worker_pool_id = {m} AND s.expires > {m} ORDER BY 1, 2, 3, 4"
)
EXPIRE_EXCEPTIONS = (
    "DELETE FROM purge_selector_exceptions WHERE NOT EXISTS (SELECT 1 FROM purge_selectors "
    "AS s WHERE s.worker_pool_pattern = purge_selector_exceptions.worker_pool_pattern "
    "AND s.cache_name_pattern = purge_selector_exceptions.cache_name_pattern "
    "AND s.before = purge_selector_exceptions.before)"
)
CANCEL_PAIR = (
    "DELETE FROM cache_purges WHERE worker_pool_id = {m} AND cache_name = {m} AND before = {m} "
    "AND expires > {m}"
)


class Candidate(NamedTuple):
    """A pair a selector may mean, and what one source knows of it."""

    worker_pool_id: str
    cache_name: str
    known_from: str  # inventory, history or requests
    worker: str | None  # inventory: `group/id` of the worker holding it
    bytes: int


class StoredSelector(NamedTuple):
    """An applied selector as kept: its patterns, the purge time, until when it is served."""

    pool_pattern: str
    cache_pattern: str
    pool_prefix: str
    before: int
    expires: int


Pair = tuple[str, str]  # a worker pool id and a cache name


class AppliedSelector(NamedTuple):
    """An applied selector as cancelling names it: its patterns and when it was applied."""

    pool_pattern: str
    cache_pattern: str
    before: int


def candidates_args(prefix: str, active_since: int, now: int, limit: int) -> tuple[object, ...]:
    """The parameters of `CANDIDATES`."""
    pools = (prefix, prefix + PAST_PREFIX)
    return (*pools, active_since, *pools, *pools, now, limit)


def read_candidate(row: tuple[object, ...]) -> Candidate:
    """A `CANDIDATES` row."""
    pool, cache, source, worker, size = row
    held = None if worker is None else str(worker)
    return Candidate(str(pool), str(cache), str(source), held, int(size))  # type: ignore[call-overload]


def sql(template: str, mark: str) -> str:
    """A statement with the backend's placeholder."""
    return template.format(m=mark)

"""The purge history table as both backends write and read it: its columns, its rows, and the
SQL of a filtered, newest-first listing (the backends differ only in their placeholder)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from purgecache.model import SUPERSEDED, HistoryFilter, Provenance, PurgeEvent, PurgeRequest

# The purge (its key, time and until-applied policy: 1 kept until applied, 0 the normal one,
# see migration 0013), then its provenance.
COLUMNS = (
    "worker_pool_id, cache_name, purged_at, until_applied, endpoint, client_id, source_ip, "
    "signed_spelling, user_agent, reason, link, selector_pool_pattern, selector_cache_pattern"
)
_Fact = str | None
EventRow = tuple[str, str, int, int, str, _Fact, _Fact, _Fact, _Fact, _Fact, _Fact, _Fact, _Fact]
PRUNE = "DELETE FROM purge_history WHERE purged_at < {mark}"
# How each purge ended (NULL while open): written when it stops being served, never on the
# purge's own row insert but for a purge superseded within its own write batch.
END_COLUMNS = "ended_at, end_reason"
# The end of the purge a request row stood for (the row's `before` is the event's time).
END = (
    "UPDATE purge_history SET ended_at = {mark}, end_reason = {mark} WHERE purged_at = {mark} "
    "AND worker_pool_id = {mark} AND cache_name = {mark} AND ended_at IS NULL"
)
EndRow = tuple[int, str, int, str, str]  # ended at, reason, purged at, pool, cache name
WRITTEN = f"{COLUMNS}, {END_COLUMNS}".split(", ")  # the columns of an event row as written


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """A page of purge events, newest first; `next_after` keys the last one when more follow;
    `total` counts every event the filter matches."""

    events: list[PurgeEvent]
    total: int
    next_after: tuple[int, int] | None


def event_row(request: PurgeRequest, origin: Provenance) -> EventRow:
    """The event of a purge as stored: its key, time and policy, then its provenance
    (`COLUMNS`). The policy as an int: sqlite3 binds an int as it is, a bool only after an
    adapter look-up (see `storage/sqlite.py`)."""
    policy = 0 if request.until_applied is None else 1
    return (request.worker_pool_id, request.cache_name, request.before, policy, *origin)


def end_row(worker_pool_id: str, cache_name: str, before: int, ended: int, reason: str) -> EndRow:
    """The parameters of `END`."""
    return (ended, reason, before, worker_pool_id, cache_name)


def superseded_in_batch(keys: list[tuple[str, str, int]]) -> list[int | None]:
    """A write batch's purges of one cache end each other: per purge, when a later one of
    the batch superseded it (None: the last of its cache; the stored purge it replaces is
    ended by the `cache_purges_supersede` trigger). `keys`: each purge's pool, cache name and
    time, in the batch's order."""
    ended: list[int | None] = [None] * len(keys)
    latest: dict[tuple[str, str], int] = {}
    for index, (pool, cache, before) in enumerate(keys):
        key = (pool, cache)
        if key in latest:
            ended[latest[key]] = before
        latest[key] = index
    return ended


def ended_columns(ended: int | None) -> tuple[int | None, str | None]:
    """`END_COLUMNS` of a purge written ended (superseded in its batch) or open."""
    return (None, None) if ended is None else (ended, SUPERSEDED)


def read_event(row: tuple[Any, ...]) -> PurgeEvent:
    """An event from `event_id, COLUMNS, END_COLUMNS`."""
    origin = Provenance(*row[5:14])
    ended = None if row[14] is None else int(row[14])
    return PurgeEvent(
        row[1], row[2], int(row[3]), origin, int(row[0]), ended, row[15], bool(row[4])
    )


def _where(query: HistoryFilter, mark: str) -> tuple[list[str], list[object]]:
    conditions: list[str] = []
    values: list[object] = []
    for column, value in (
        ("worker_pool_id =", query.worker_pool_id),
        ("cache_name =", query.cache_name),
        ("client_id =", query.client_id),
        ("purged_at >=", query.since),
        ("purged_at <", query.until),
    ):
        if value is not None:
            conditions.append(f"{column} {mark}")
            values.append(value)
    return conditions, values


def count_sql(query: HistoryFilter, mark: str) -> tuple[str, list[object]]:
    """How many events match the filter."""
    conditions, values = _where(query, mark)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"SELECT count(*) FROM purge_history{where}", values


def page_sql(
    query: HistoryFilter, after: tuple[int, int] | None, limit: int, mark: str
) -> tuple[str, list[object]]:
    """Up to `limit` + 1 matching events older than the key `after`, newest first (the extra
    row says whether another page follows)."""
    conditions, values = _where(query, mark)
    if after is not None:
        conditions.append(f"(purged_at, event_id) < ({mark}, {mark})")
        values.extend(after)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = (
        f"SELECT event_id, {COLUMNS}, {END_COLUMNS} FROM purge_history{where} "
        f"ORDER BY purged_at DESC, event_id DESC LIMIT {mark}"
    )
    return sql, [*values, limit + 1]


def history_page(rows: list[tuple[Any, ...]], total: int, limit: int) -> HistoryPage:
    """The page of `page_sql`'s rows."""
    events = [read_event(row) for row in rows[:limit]]
    more = len(rows) > limit
    last = events[-1] if more else None
    return HistoryPage(events, total, None if last is None else (last.time, last.event_id))

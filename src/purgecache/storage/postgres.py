"""PostgreSQL storage, for production and for several replicas on one database.

psycopg 3 with an async connection pool (statements are prepared automatically after a few
uses). Every purge also sends `NOTIFY purgecache, '<pool>'` in its transaction; each process
LISTENs on a dedicated connection and drops that pool from its cache, so a purge accepted by any
replica is visible on all of them at once. While that connection is down, `changes` reports
everything as changed on every call, so caches are never trusted blindly.

Behind a transaction pooler (PgBouncer's `pool_mode = transaction`) a session is not kept
between transactions: no prepared statements, no LISTEN, no session advisory lock. Given a
`listen_url` (a direct connection), the pool prepares nothing and LISTEN and the migrations
(under a session lock) use `listen_url`; every other statement is one transaction (autocommit,
or an explicit one), so the pooler may hand each to any server connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import orjson
import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from purgecache.events import model as events
from purgecache.logs import log_event
from purgecache.model import CANCELLED, HistoryFilter, Provenance, PurgeRequest, WorkerReport
from purgecache.storage import fetches, history, outbox, receipts, selectors, settling
from purgecache.storage.base import (
    EVERYTHING,
    NO_CHANGES,
    Changes,
    EntryPage,
    SchemaError,
    SchemaTooNewError,
    StorageError,
    StorageUnavailable,
)
from purgecache.storage.batching import WriteBatcher
from purgecache.storage.history import HistoryPage
from purgecache.storage.migrations import Migration, migrations, python_step, statements
from purgecache.storage.outbox import Claimed, Delivery
from purgecache.storage.receipts import Reported, StoredInventory, StoredReceipt
from purgecache.storage.selectors import AppliedSelector, Candidate, Pair, StoredSelector
from purgecache.storage.settling import Settled, Unsettled

T = TypeVar("T")
log = logging.getLogger("purgecache")

CHANNEL = "purgecache"
MIGRATIONS = migrations("postgres")
LATEST_VERSION = MIGRATIONS[-1].number
# Arbitrary fixed keys for advisory locks (migrations, expiry).
MIGRATE_LOCK = 0x70757267_6D696772 & 0x7FFFFFFFFFFFFFFF
EXPIRE_LOCK = 0x70757267_65787069 & 0x7FFFFFFFFFFFFFFF

_COLUMNS = "worker_pool_id, cache_name, before, expires"
_READ = f"{_COLUMNS}, until_applied"  # a pool's requests, with their until-applied policy
# A whole batch in one statement (one round trip, its own transaction in autocommit mode):
# the requests and the history events each as one JSON array of rows (made by orjson in C:
# psycopg builds binary arrays element by element in Python, about 6 µs per purge for the 20
# columns, more than anything else the service does for a purge), upserted (the
# `cache_purges_supersede` trigger ends the history event of each stored purge they replace),
# every purge's event added to the history (and to the event outbox if a target is
# registered), and a notification per pool they touched, sent at commit.
_HISTORY_CASTS = {"purged_at": "bigint", "ended_at": "bigint", "until_applied": "boolean"}
_HISTORY_VALUES = ", ".join(
    f"(r->>{n})::{_HISTORY_CASTS[column]}" if column in _HISTORY_CASTS else f"r->>{n}"
    for n, column in enumerate(history.WRITTEN)
)
_UPSERT_BATCH = (
    "WITH written AS ("
    f"INSERT INTO cache_purges ({_COLUMNS}, wire, until_applied) "
    "SELECT r->>0, r->>1, (r->>2)::bigint, (r->>3)::bigint, r->>4, (r->>5)::bigint "
    "FROM jsonb_array_elements(%s::jsonb) AS e(r) ON CONFLICT (worker_pool_id, cache_name) "
    "DO UPDATE SET before = excluded.before, expires = excluded.expires, wire = excluded.wire, "
    "until_applied = excluded.until_applied, converged_at = NULL "
    "RETURNING worker_pool_id), "
    f"logged AS (INSERT INTO purge_history ({history.COLUMNS}, {history.END_COLUMNS}) "
    f"SELECT {_HISTORY_VALUES} FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS e(r, n) "
    "ORDER BY n), "
    f"evented AS (INSERT INTO event_outbox ({outbox.EVENT_COLUMNS}) "
    "SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::bigint[], "
    f"%b::bytea[]) WHERE EXISTS ({outbox.HAS_TARGETS}) ON CONFLICT (event_id) DO NOTHING) "
    "SELECT pg_notify(%b, p) FROM (SELECT DISTINCT worker_pool_id AS p FROM written) AS pools "
    "WHERE purgecache_events_built(%b)"  # see migration 0011
)
EVENTS_WANTED = "PCE01"  # the SQLSTATE of purgecache_events_built's refusal
_RECEIPT = receipts.UPSERT_RECEIPT.format(marks=", ".join(["%s"] * 11))
_WORKER = receipts.UPSERT_WORKER.format(marks="%s, %s, %s, %s")
_RECEIPTS = receipts.RECEIPTS.format(mark="%s")
_CLEAR_INVENTORY = receipts.CLEAR_INVENTORY.format(mark="%s")
_INSERT_INVENTORY = receipts.INSERT_INVENTORY.format(marks=", ".join(["%s"] * 8))
_INVENTORY = receipts.INVENTORY.format(mark="%s")
_FETCH = fetches.UPSERT_FETCH.format(marks="%s, %s, %s, %s, %s")
_TALLY_QUERIES = fetches.spelt("%%(%s)s")
_EVENT = outbox.INSERT_EVENT.format(marks="%s, %s, %s, %s, %s, %s")
_EXPIRE = settling.EXPIRE.format(mark="%s")
_END = history.END.format(mark="%s")
_CANDIDATES = selectors.sql(selectors.CANDIDATES, "%s")
_SELECTOR = selectors.sql(selectors.UPSERT_SELECTOR, "%s")
_POOL_SELECTORS = selectors.sql(selectors.POOL_SELECTORS, "%s")
_EXPIRE_SELECTORS = selectors.sql(selectors.EXPIRE, "%s")
_OPEN_SELECTOR = selectors.sql(selectors.OPEN_SELECTOR, "%s")
_SELECTOR_PAIRS = selectors.sql(selectors.SELECTOR_PAIRS, "%s")
_WITHDRAW = selectors.sql(selectors.WITHDRAW, "%s")
_CANCEL_PAIR = selectors.sql(selectors.CANCEL_PAIR, "%s")
_EXCEPT = selectors.sql(selectors.EXCEPT, "%s")
_POOL_EXCEPTIONS = selectors.sql(selectors.POOL_EXCEPTIONS, "%s")
_EXPIRE_EXCEPTIONS = selectors.sql(selectors.EXPIRE_EXCEPTIONS, "%s")
_DUE = outbox.sql(outbox.DUE, "%s") + " FOR UPDATE SKIP LOCKED"
_LEASE = outbox.sql(outbox.LEASE, "%s", due=_DUE)
_MERGE = (
    f"INSERT INTO cache_purges ({_COLUMNS}, wire, until_applied) "
    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (worker_pool_id, cache_name) DO UPDATE SET "
    "wire = CASE WHEN excluded.before > cache_purges.before "
    "THEN excluded.wire ELSE cache_purges.wire END, "
    "until_applied = CASE WHEN excluded.before > cache_purges.before "
    "THEN excluded.until_applied ELSE cache_purges.until_applied END, "
    "before = greatest(cache_purges.before, excluded.before), "
    "expires = greatest(cache_purges.expires, excluded.expires)"
)
_POOL = (
    f"SELECT {_READ} FROM cache_purges WHERE worker_pool_id = %s AND expires > %s "
    "ORDER BY cache_name"
)
# Pages of requests for `db copy`, with their until-applied policy when the schema has it.
_FIRST_PAGE = "SELECT {columns} FROM cache_purges WHERE expires > %s ORDER BY 1, 2 LIMIT %s"
_NEXT_PAGE = (
    "SELECT {columns} FROM cache_purges WHERE (worker_pool_id, cache_name) > (%s, %s) "
    "AND expires > %s ORDER BY 1, 2 LIMIT %s"
)
# Entries as bytes (binary results). The key of a page's last row comes with it, in the same
# statement (one snapshot): `last` finds that row's key, and only that row returns its key
# columns; every other row's are NULL, which costs next to nothing to load (key columns on
# every row made a page half as dear again).
_ENTRIES = """WITH last AS (
    SELECT worker_pool_id AS pool, cache_name AS name FROM cache_purges WHERE {where}
    ORDER BY worker_pool_id, cache_name OFFSET %(last)s LIMIT 1
)
SELECT convert_to(wire, 'UTF8'),
    CASE WHEN worker_pool_id = pool AND cache_name = name THEN worker_pool_id END,
    CASE WHEN worker_pool_id = pool AND cache_name = name THEN cache_name END
FROM cache_purges LEFT JOIN last ON true WHERE {where}
ORDER BY worker_pool_id, cache_name LIMIT %(limit)s"""
_FIRST_ENTRIES = _ENTRIES.format(where="expires > %(now)s")
_NEXT_ENTRIES = _ENTRIES.format(
    where="(worker_pool_id, cache_name) > (%(pool)s, %(name)s) AND expires > %(now)s"
)


def _storage_error(error: psycopg.Error | OSError) -> StorageError:
    """StorageUnavailable when the database cannot be reached (no connection, a lost one, a
    server shutting down, no pooled connection within the timeout), else StorageError."""
    text = f"PostgreSQL: {type(error).__name__}: {error}"
    if isinstance(error, OSError | PoolTimeout):
        return StorageUnavailable(text)
    if isinstance(error, psycopg.OperationalError):
        state = error.sqlstate  # None: failed on the client side (connecting, connection lost)
        if state is None or state.startswith(("08", "57P")):
            return StorageUnavailable(text)
    return StorageError(text)


async def _ping(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute("SELECT 1 FROM cache_purges LIMIT 1")


def _row(row: tuple[Any, ...]) -> PurgeRequest:
    return PurgeRequest(*row)  # a listing page's row: with its policy, or without (schema < 10)


TextRow = tuple[str, str, int, int, str]
PurgeRow = tuple[PurgeRequest, bytes, Provenance]
_NO_EVENTS: tuple[list[Any], ...] = ([], [], [], [], [], [])


def _text_row(request: PurgeRequest, entry: bytes) -> TextRow:
    """A row as written: the entry in the `text` column (UTF-8), where schema 2 kept it."""
    key_and_times = (request.worker_pool_id, request.cache_name, request.before, request.expires)
    return (*key_and_times, entry.decode())


def _batch_params(rows: Sequence[PurgeRow], with_events: bool) -> tuple[Any, ...]:
    """`_UPSERT_BATCH`'s parameters but the channel: the requests (of several purges of one
    cache, the last stands: one statement may not update a row twice) and every purge's
    history event (those superseded within the batch written ended), each as a JSON array of
    rows, then their `purge.created` events as arrays (`with_events`; none otherwise)."""
    latest = {
        (r.worker_pool_id, r.cache_name): (*_text_row(r, e), r.until_applied) for r, e, _ in rows
    }
    event_rows = [history.event_row(r, o) for r, _, o in rows]
    ended = history.superseded_in_batch([row[:3] for row in event_rows])
    both = zip(event_rows, ended, strict=True)
    logged = [(*row, *history.ended_columns(t)) for row, t in both]
    created = _NO_EVENTS
    if with_events:
        built = [events.created(r, o) for r, _, o in rows]
        created = tuple(list(column) for column in zip(*built, strict=True))
    requests = orjson.dumps(list(latest.values())).decode()
    return (requests, orjson.dumps(logged).decode(), *created)


async def upgrade(conn: psycopg.AsyncConnection[Any]) -> int:
    """Apply missing migrations, each in its own transaction (a Python one commits batches),
    all under one advisory lock held by the session; refuse a newer or foreign schema."""
    await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATE_LOCK,))
    try:
        current = await _version_to_upgrade(conn)
        for migration in MIGRATIONS:
            if migration.number > current:
                await _apply(conn, migration)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATE_LOCK,))
    return max(current, LATEST_VERSION)


async def _version_to_upgrade(conn: psycopg.AsyncConnection[Any]) -> int:
    await conn.execute("CREATE TABLE IF NOT EXISTS purgecache_schema (version integer)")
    row = await (await conn.execute("SELECT max(version) FROM purgecache_schema")).fetchone()
    current = int(row[0]) if row and row[0] is not None else 0
    if current > LATEST_VERSION:
        raise SchemaTooNewError(
            f"database schema version {current} is newer than this purgecache knows "
            f"({LATEST_VERSION}); refusing to downgrade: run a newer purgecache"
        )
    if current == 0:
        found = await (await conn.execute("SELECT to_regclass('cache_purges')")).fetchone()
        if found and found[0] is not None:
            raise SchemaError(
                "this database already has a cache_purges table that purgecache did not "
                "create (an upstream Taskcluster database?); give purgecache its own "
                "database and import with `purgecache db copy`"
            )
    return current


async def _apply(conn: psycopg.AsyncConnection[Any], migration: Migration) -> None:
    if migration.module is not None:
        await python_step(migration)(conn)
    async with conn.transaction():
        for statement in statements(migration.sql):
            await conn.execute(statement)
        await conn.execute("INSERT INTO purgecache_schema VALUES (%s)", (migration.number,))


class PostgresStorage:
    """The Storage interface on a PostgreSQL database."""

    def __init__(
        self, url: str, *, max_connections: int = 10, timeout: float = 3.0, listen_url: str = ""
    ) -> None:
        self.url = url
        self.direct_url = listen_url or url  # for sessions: LISTEN, migrations
        self._pooler = bool(listen_url)
        self.timeout = timeout
        self._max_connections = max_connections
        self._pool: AsyncConnectionPool | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listening = False
        self._resync = True
        self._changed: set[str] = set()
        self._batcher: WriteBatcher[PurgeRow] = WriteBatcher(self._write_batch)
        self._reports: WriteBatcher[Reported] = WriteBatcher(self._write_reports)
        # Whether purges are written with their events (see `_write_batch`): not until the
        # database says a target is registered (or this process registers one).
        self._events_wanted = False

    def _connections(self) -> AsyncConnectionPool:
        if self._pool is None:  # created lazily, inside the running event loop
            self._pool = AsyncConnectionPool(
                self.url,
                min_size=1,
                max_size=self._max_connections,
                timeout=self.timeout,
                open=False,
                kwargs=self._connection_options(),
            )
        return self._pool

    def _connection_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"autocommit": True}
        options["connect_timeout"] = max(1, int(self.timeout))
        if self._pooler:
            options["prepare_threshold"] = None  # a pooler's server connections change
        return options

    async def _run(self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        pool = self._connections()
        try:
            if pool.closed:
                await pool.open(wait=False)
            async with pool.connection() as conn:
                return await work(conn)
        except (psycopg.Error, OSError) as error:
            raise _storage_error(error) from error

    async def _once(self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """`work` on a connection of its own: a one-off task (start-up, `db upgrade`) gets the
        server's own reason for a refusal (`database "x" does not exist`), not a pool's
        warnings and time-out."""
        try:
            conn = await psycopg.AsyncConnection.connect(
                self.direct_url, autocommit=True, connect_timeout=max(1, int(self.timeout))
            )
            async with conn:
                return await work(conn)
        except (psycopg.Error, OSError) as error:
            raise StorageError(f"PostgreSQL: {type(error).__name__}: {error}") from error

    async def upgrade(self) -> int:
        return await self._once(upgrade)

    async def schema_version(self) -> int:
        async def read(conn: psycopg.AsyncConnection[Any]) -> int:
            found = await (await conn.execute("SELECT to_regclass('purgecache_schema')")).fetchone()
            if not found or found[0] is None:
                return 0
            row = await (
                await conn.execute("SELECT max(version) FROM purgecache_schema")
            ).fetchone()
            return int(row[0]) if row and row[0] is not None else 0

        return await self._once(read)

    async def start(self) -> None:
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen_forever())

    def changes(self) -> Changes:
        if not self._listening or self._resync:
            # Notifications sent while we were not listening are lost: trust nothing cached
            # before LISTEN was (re-)established.
            self._resync = not self._listening
            self._changed.clear()
            return EVERYTHING
        if not self._changed:
            return NO_CHANGES
        pools, self._changed = frozenset(self._changed), set()
        return Changes(pools=pools)

    async def _listen_forever(self) -> None:
        delay = 0.1
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.direct_url, autocommit=True, connect_timeout=max(1, int(self.timeout))
                )
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._listening, delay = True, 0.1
                    async for notice in conn.notifies():
                        self._changed.add(notice.payload)
            except (psycopg.Error, OSError) as error:
                if self._listening:
                    log_event(log, logging.WARNING, "listener-lost", error=type(error).__name__)
            self._listening, self._resync = False, True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def purge(self, request: PurgeRequest, entry: bytes, origin: Provenance) -> None:
        await self._batcher.write((request, entry, origin))

    async def _write_batch(self, rows: list[PurgeRow]) -> None:
        """Purges, their history and (only while a target is registered) their events in one
        statement: built without events while this process has seen no target, and again
        with them should the database refuse that (a target was registered meanwhile)."""
        built = self._events_wanted

        async def write(conn: psycopg.AsyncConnection[Any]) -> None:
            try:
                await conn.execute(_UPSERT_BATCH, (*_batch_params(rows, built), CHANNEL, built))
            except psycopg.Error as error:
                if built or error.sqlstate != EVENTS_WANTED:
                    raise
                self._events_wanted = True
                await conn.execute(_UPSERT_BATCH, (*_batch_params(rows, True), CHANNEL, True))

        await self._run(write)

    async def purge_selector(self, selector: StoredSelector, purges: Sequence[PurgeRow]) -> None:
        params = _batch_params(purges, True)  # rare: no need to spare building its events

        async def write(conn: psycopg.AsyncConnection[Any]) -> None:
            async with conn.transaction():
                if purges:
                    await conn.execute(_UPSERT_BATCH, (*params, CHANNEL, True))
                await conn.execute(_SELECTOR, selector)

        await self._run(write)

    async def selector_candidates(
        self, pool_prefix: str, active_since: int, now: int, limit: int
    ) -> list[Candidate]:
        args = selectors.candidates_args(pool_prefix, active_since, now, limit)

        async def read(conn: psycopg.AsyncConnection[Any]) -> list[Candidate]:
            cursor = await conn.execute(_CANDIDATES, args)
            return [selectors.read_candidate(row) for row in await cursor.fetchall()]

        return await self._run(read)

    async def pool_selectors(
        self, worker_pool_id: str, since: int, now: int, limit: int
    ) -> list[tuple[str, str, int]]:
        async def read(conn: psycopg.AsyncConnection[Any]) -> list[tuple[str, str, int]]:
            cursor = await conn.execute(_POOL_SELECTORS, (now, since, worker_pool_id, limit))
            return [(str(p), str(c), int(b)) for p, c, b in await cursor.fetchall()]

        return await self._run(read)

    async def selector_purges(
        self, pool_pattern: str, cache_pattern: str, now: int
    ) -> tuple[int, list[Pair]] | None:
        async def read(
            conn: psycopg.AsyncConnection[Any],
        ) -> tuple[int, list[tuple[str, str]]] | None:
            cursor = await conn.execute(_OPEN_SELECTOR, (pool_pattern, cache_pattern, now))
            row = await cursor.fetchone()
            if row is None:
                return None
            before = int(row[0])
            cursor = await conn.execute(_SELECTOR_PAIRS, (before, pool_pattern, cache_pattern, now))
            return before, [(str(p), str(c)) for p, c in await cursor.fetchall()]

        return await self._run(read)

    async def cancel_selector(
        self, applied: AppliedSelector, pairs: Sequence[Pair], now: int, origin: Provenance
    ) -> list[Pair] | None:
        async def delete(conn: psycopg.AsyncConnection[Any]) -> list[Pair] | None:
            async with conn.transaction(), conn.cursor() as cursor:
                await cursor.execute(_WITHDRAW, (*applied, now))
                if cursor.rowcount == 0:
                    return None
                before = applied.before
                gone = []
                for pool, cache in pairs:
                    await cursor.execute(_CANCEL_PAIR, (pool, cache, before, now))
                    if cursor.rowcount:
                        gone.append((pool, cache))
                        await cursor.execute(
                            _END, history.end_row(pool, cache, before, now, CANCELLED)
                        )
                        await cursor.execute(
                            _EVENT, events.cancelled(pool, cache, before, now, origin)
                        )
                for pool in sorted({pool for pool, _ in gone}):
                    await cursor.execute("SELECT pg_notify(%s, %s)", (CHANNEL, pool))
            return gone

        return await self._run(delete)

    async def selector_exceptions(
        self, worker_pool_id: str, now: int
    ) -> list[tuple[str, str, int, str]]:
        async def read(conn: psycopg.AsyncConnection[Any]) -> list[tuple[str, str, int, str]]:
            cursor = await conn.execute(_POOL_EXCEPTIONS, (worker_pool_id, now))
            return [(str(p), str(c), int(b), str(n)) for p, c, b, n in await cursor.fetchall()]

        return await self._run(read)

    async def put_many(self, rows: Sequence[tuple[PurgeRequest, bytes]]) -> None:
        values = [(*_text_row(request, entry), request.until_applied) for request, entry in rows]

        async def write(conn: psycopg.AsyncConnection[Any]) -> None:
            async with conn.transaction():
                async with conn.cursor() as cursor:
                    await cursor.executemany(_MERGE, values)
                await conn.execute(
                    "SELECT pg_notify(%s, p) FROM unnest(%s::text[]) AS p",
                    (CHANNEL, sorted({request.worker_pool_id for request, _ in rows})),
                )

        await self._run(write)

    async def purge_requests(self, worker_pool_id: str, now: int) -> list[PurgeRequest]:
        async def read(conn: psycopg.AsyncConnection[Any]) -> list[PurgeRequest]:
            cursor = await conn.execute(_POOL, (worker_pool_id, now))
            return [_row(r) for r in await cursor.fetchall()]

        return await self._run(read)

    async def list_page(
        self, after: tuple[str, str] | None, limit: int, now: int, *, with_policy: bool = True
    ) -> list[PurgeRequest]:
        query, args = (
            (_FIRST_PAGE, (now, limit))
            if after is None
            else (_NEXT_PAGE, (after[0], after[1], now, limit))
        )
        query = query.format(columns=_READ if with_policy else _COLUMNS)

        async def read(conn: psycopg.AsyncConnection[Any]) -> list[PurgeRequest]:
            cursor = await conn.execute(query, args)
            return [_row(r) for r in await cursor.fetchall()]

        return await self._run(read)

    async def list_entries(self, after: tuple[str, str] | None, limit: int, now: int) -> EntryPage:
        args: dict[str, int | str] = {"now": now, "last": limit - 1, "limit": limit + 1}
        if after is not None:
            args |= {"pool": after[0], "name": after[1]}
        query = _FIRST_ENTRIES if after is None else _NEXT_ENTRIES

        async def read(conn: psycopg.AsyncConnection[Any]) -> EntryPage:
            rows = await (await conn.execute(query, args, binary=True)).fetchall()
            entries = [row[0] for row in rows]
            if len(entries) <= limit:
                return EntryPage(entries, None)
            del entries[limit:]
            last = rows[limit - 1]
            return EntryPage(entries, (last[1], last[2]))

        return await self._run(read)

    async def expire(self, now: int) -> int | None:
        async def delete(conn: psycopg.AsyncConnection[Any]) -> int | None:
            async with conn.transaction():
                locked = await (
                    await conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (EXPIRE_LOCK,))
                ).fetchone()
                if not locked or not locked[0]:
                    return None
                gone = await (await conn.execute(_EXPIRE, (now,))).fetchall()
                await conn.execute(_EXPIRE_SELECTORS, (now,))
                await conn.execute(_EXPIRE_EXCEPTIONS)
                if gone:
                    ends, expired = settling.expired(gone, now)
                    async with conn.cursor() as cursor:
                        await cursor.executemany(_END, ends)
                        await cursor.executemany(_EVENT, expired)
                return len(gone)

        return await self._run(delete)

    async def unsettled(self, now: int) -> list[Unsettled]:
        async def read(conn: psycopg.AsyncConnection[Any]) -> list[Unsettled]:
            cursor = await conn.execute(settling.UNSETTLED.format(mark="%s"), (now, now))
            return [settling.read_unsettled(row) for row in await cursor.fetchall()]

        return await self._run(read)

    async def settle(self, decided: Sequence[Settled], now: int) -> None:
        mark = settling.MARK_CONVERGED.format(mark="%s")
        remove = settling.REMOVE.format(mark="%s")

        async def write(conn: psycopg.AsyncConnection[Any]) -> None:
            async with conn.transaction(), conn.cursor() as cursor:
                for settled in decided:
                    guard = settling.guard(settled)
                    if settled.converged is not None:
                        await cursor.execute(mark, (now, *guard))
                        if cursor.rowcount:
                            await cursor.execute(_EVENT, settled.converged)
                    if settled.end is not None:
                        await cursor.execute(remove, guard)
                        if cursor.rowcount:
                            await self._removed(cursor, settled, now)

        await self._run(write)

    @staticmethod
    async def _removed(cursor: psycopg.AsyncCursor[Any], settled: Settled, now: int) -> None:
        end, expired = settling.removed(settled, now)
        await cursor.execute(_END, end)
        if expired is not None:
            await cursor.execute(_EVENT, expired)
        await cursor.execute("SELECT pg_notify(%s, %s)", (CHANNEL, end[3]))

    async def cancel(
        self, pair: Pair, now: int, origin: Provenance, covering: Sequence[AppliedSelector] = ()
    ) -> int | None:
        worker_pool_id, cache_name = pair
        cancel = settling.CANCEL.format(mark="%s")
        exceptions = [(*selector, worker_pool_id, cache_name) for selector in covering]

        async def delete(conn: psycopg.AsyncConnection[Any]) -> int | None:
            async with conn.transaction(), conn.cursor() as cursor:
                await cursor.execute(cancel, (worker_pool_id, cache_name, now))
                row = await cursor.fetchone()
                if row is None:
                    return None
                key = (worker_pool_id, cache_name, int(row[0]))
                await cursor.execute(_END, history.end_row(*key, now, CANCELLED))
                await cursor.execute(_EVENT, events.cancelled(*key, now, origin))
                if exceptions:
                    await cursor.executemany(_EXCEPT, exceptions)
                await cursor.execute("SELECT pg_notify(%s, %s)", (CHANNEL, worker_pool_id))
            return key[2]

        return await self._run(delete)

    async def purge_history(
        self, query: HistoryFilter, after: tuple[int, int] | None, limit: int
    ) -> HistoryPage:
        count, count_args = history.count_sql(query, "%s")
        page, page_args = history.page_sql(query, after, limit, "%s")

        async def read(conn: psycopg.AsyncConnection[Any]) -> HistoryPage:
            async with conn.transaction():
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                row = await (await conn.execute(count, count_args)).fetchone()
                rows = await (await conn.execute(page, page_args)).fetchall()
            return history.history_page(rows, int(row[0]) if row else 0, limit)

        return await self._run(read)

    async def prune_history(self, before: int) -> int:
        async def delete(conn: psycopg.AsyncConnection[Any]) -> int:
            await conn.execute(outbox.sql(outbox.PRUNE, "%s"), (before,))
            cursor = await conn.execute(history.PRUNE.format(mark="%s"), (before,))
            return cursor.rowcount

        return await self._run(delete)

    async def report_worker_sync(self, report: WorkerReport, now: int) -> None:
        await self._reports.write(receipts.report_rows(report, now))

    async def _write_reports(self, batch: list[Reported]) -> None:
        rows = [row for report in batch for row in report.receipts]
        workers = [report.worker for report in batch]
        cleared, held = receipts.inventories(batch)

        async def write(conn: psycopg.AsyncConnection[Any]) -> None:
            async with conn.transaction(), conn.cursor() as cursor:
                if rows:
                    await cursor.executemany(_RECEIPT, rows)
                    targets = await (await cursor.execute(outbox.HAS_TARGETS)).fetchone()
                    if targets is not None:
                        await cursor.executemany(_EVENT, receipts.applied_events(batch))
                await cursor.executemany(_WORKER, workers)
                if cleared:
                    await cursor.executemany(_CLEAR_INVENTORY, cleared)
                if held:
                    await cursor.executemany(_INSERT_INVENTORY, held)

        await self._run(write)

    async def worker_receipts(self, worker_pool_id: str) -> list[StoredReceipt]:
        async def read(conn: psycopg.AsyncConnection[Any]) -> list[StoredReceipt]:
            cursor = await conn.execute(_RECEIPTS, (worker_pool_id,))
            return [receipts.read_receipt(row) for row in await cursor.fetchall()]

        return await self._run(read)

    async def worker_inventory(self, worker_pool_id: str) -> list[StoredInventory]:
        async def read(conn: psycopg.AsyncConnection[Any]) -> list[StoredInventory]:
            cursor = await conn.execute(_INVENTORY, (worker_pool_id,))
            return [receipts.read_inventory(row) for row in await cursor.fetchall()]

        return await self._run(read)

    async def record_fetches(self, rows: Sequence[fetches.FetchRow]) -> None:
        async def write(conn: psycopg.AsyncConnection[Any]) -> None:
            async with conn.transaction(), conn.cursor() as cursor:
                await cursor.executemany(_FETCH, rows)

        await self._run(write)

    async def purge_tallies(
        self, worker_pool_id: str, purges: Sequence[tuple[str, int]], active_since: int, shown: int
    ) -> list[fetches.PurgeTally]:
        async def read(conn: psycopg.AsyncConnection[Any]) -> list[fetches.PurgeTally]:
            tallies = []
            async with conn.transaction(), conn.cursor() as cursor:
                await cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                for cache, before in purges:
                    values = {"pool": worker_pool_id, "cache": cache, "before": before}
                    values |= {"since": active_since, "limit": shown}
                    found = []
                    for query in _TALLY_QUERIES:
                        await cursor.execute(query, values)
                        found.append(await cursor.fetchall())
                    reporters, straggling, fetchers, fetching = found
                    counts = tuple(int(n) for n in reporters[0])  # sums are numeric
                    served = tuple(int(n) for n in fetchers[0])
                    tallies.append(fetches.PurgeTally(counts, straggling, served, fetching))
            return tallies

        return await self._run(read)

    async def prune_workers(self, before: int) -> int:
        async def delete(conn: psycopg.AsyncConnection[Any]) -> int:
            async with conn.transaction(), conn.cursor() as cursor:
                gone = []
                for sql in fetches.PRUNE:
                    await cursor.execute(sql.format(mark="%s"), (before,))
                    gone.append(cursor.rowcount)
            return gone[0] + gone[2]

        return await self._run(delete)

    async def add_event_targets(self, targets: Sequence[str]) -> None:
        async def write(conn: psycopg.AsyncConnection[Any]) -> None:
            async with conn.transaction(), conn.cursor() as cursor:
                add = outbox.sql(outbox.ADD_TARGET, "%s")
                await cursor.executemany(add, [(target,) for target in targets])

        await self._run(write)
        if targets:
            self._events_wanted = True  # the table holds these now

    async def event_targets(self) -> list[str]:
        async def read(conn: psycopg.AsyncConnection[Any]) -> list[str]:
            rows = await (await conn.execute(outbox.TARGETS)).fetchall()
            return [str(row[0]) for row in rows]

        return await self._run(read)

    async def remove_event_targets(self, targets: Sequence[str]) -> int:
        async def write(conn: psycopg.AsyncConnection[Any]) -> int:
            async with conn.transaction(), conn.cursor() as cursor:
                among = (list(targets),)
                await cursor.execute(outbox.REMOVE_TARGETS.format(m="= ANY(%s)"), among)
                await cursor.execute(outbox.DROP_DELIVERIES.format(m="= ANY(%s)"), among)
                return cursor.rowcount  # the deliveries dropped

        removed = await self._run(write)
        self._events_wanted = False  # until the database says a target is left (PCE01)
        return removed

    async def claim_events(self, target: str, now: int, lease_ms: int, limit: int) -> list[Claimed]:
        async def claim(conn: psycopg.AsyncConnection[Any]) -> list[Claimed]:
            async with conn.transaction():
                args = (now + lease_ms, target, target, now, now, limit)
                leased = await (await conn.execute(_LEASE, args)).fetchall()
                attempts = {int(seq): int(n) for seq, n in leased}
                if not attempts:
                    return []
                query = outbox.CLAIMED.format(seqs="SELECT unnest(%s::bigint[])")
                rows = await (await conn.execute(query, (list(attempts),))).fetchall()
            return outbox.claimed(rows, attempts)

        return await self._run(claim)

    async def event_delivered(self, target: str, seq: int) -> None:
        async def delete(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute(outbox.sql(outbox.DELIVERED, "%s"), (target, seq))

        await self._run(delete)

    async def event_failed(
        self, target: str, seq: int, attempts: int, next_at: int, failed_at: int | None, error: str
    ) -> None:
        args = (attempts, next_at, failed_at, error, target, seq)

        async def update(conn: psycopg.AsyncConnection[Any]) -> None:
            await conn.execute(outbox.sql(outbox.FAILED, "%s"), args)

        await self._run(update)

    async def event_deliveries(self, limit: int) -> list[Delivery]:
        async def read(conn: psycopg.AsyncConnection[Any]) -> list[Delivery]:
            cursor = await conn.execute(outbox.sql(outbox.LISTING, "%s"), (limit,))
            return [outbox.delivery(row) for row in await cursor.fetchall()]

        return await self._run(read)

    async def retry_events(self, target: str | None, event_id: str | None) -> int:
        args = outbox.match_args(target, event_id)

        async def update(conn: psycopg.AsyncConnection[Any]) -> int:
            return (await conn.execute(outbox.sql(outbox.RETRY, "%s"), args)).rowcount

        return await self._run(update)

    async def drop_events(self, target: str | None, event_id: str | None, pending: bool) -> int:
        args = (int(pending), *outbox.match_args(target, event_id))

        async def delete(conn: psycopg.AsyncConnection[Any]) -> int:
            return (await conn.execute(outbox.sql(outbox.DROP, "%s"), args)).rowcount

        return await self._run(delete)

    async def outbox_depth(self) -> tuple[int, int]:
        async def read(conn: psycopg.AsyncConnection[Any]) -> tuple[int, int]:
            row = await (await conn.execute(outbox.DEPTH)).fetchone()
            return (int(row[0]), int(row[1])) if row else (0, 0)

        return await self._run(read)

    async def count_open(self, now: int) -> int:
        async def count(conn: psycopg.AsyncConnection[Any]) -> int:
            query = "SELECT count(*) FROM cache_purges WHERE expires > %s"
            row = await (await conn.execute(query, (now,))).fetchone()
            return int(row[0]) if row else 0

        return await self._run(count)

    async def check(self) -> None:
        await self._run(_ping)

    async def probe(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()  # its waiters fail now (PoolClosed), not after the pool timeout
        try:
            conn = await psycopg.AsyncConnection.connect(self.url, **self._connection_options())
            async with conn:
                await _ping(conn)
        except (psycopg.Error, OSError) as error:
            raise _storage_error(error) from error

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

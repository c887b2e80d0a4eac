"""SQLite storage: the zero-configuration default.

Writes go through one connection used from one dedicated thread, so the event loop never waits
for a lock, with one exception made for speed: a batch of purges or of worker reports (the
writes a fleet's `purgeCache` and `reportWorkerSync` calls wait for) is first tried on the
event loop's own thread with a connection that never waits (busy timeout 0). With
`synchronous=NORMAL` a commit is a write(2) to the WAL, no fsync: a batch costs its rows and
one write, where handing it to the thread cost more (the thread takes the GIL back after every
row, waiting up to a switch interval each time the loop is busy: purgeCache's p99 went from 18
to 8 ms and its throughput up 28%, `bench/run` side by side). Should that connection find the
file locked (another process or this one's writer thread is writing), the batch goes to the
writer's thread, which waits for the lock; with `synchronous=FULL` (an fsync per commit) every
batch goes there.

Reads (a pool's requests, a listing page) run on the event loop's own thread too, with a
read-only connection that never waits: in WAL mode a reader does not wait for writers, a page
of 1,000 rows takes a few hundred µs, and it avoids the same GIL hand-over once per row, which
made a listing several times dearer under load. Should a read find the database
busy (WAL recovery after a crash), it is retried on the writer's thread, which may wait.
WAL mode lets several processes share the file; `synchronous=NORMAL` makes every committed
purge survive a crash of the process (kill -9), `synchronous=FULL` also a power loss.

A serving process checkpoints the WAL into the database file from a third connection on its
own thread, a few times a second while anything is written: left to SQLite, the commit that
crosses 1,000 WAL pages does the checkpoint itself (copy and fsync), which took 4-9 ms instead
of 0.2 ms for about one commit in a hundred under a stream of purges, and every purge waiting
for that commit waited with it. The writer still checkpoints by itself should the WAL grow
far beyond that (`WRITER_CHECKPOINT_PAGES`). Under a steady stream of purges those passive
checkpoints never catch up with the end of the WAL (frames keep coming while they copy), and
SQLite starts the WAL over only once a checkpoint has copied all of it: when the checkpointer
sees more than `RESTART_FRAMES` frames, batches go to the writer's thread, which checkpoints
after each commit until one checkpoint has copied everything (no other write came meanwhile)
and the WAL starts over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, cast

from purgecache.events import model as events
from purgecache.logs import log_event
from purgecache.model import CANCELLED, HistoryFilter, Provenance, PurgeRequest, WorkerReport
from purgecache.storage import fetches, history, outbox, receipts, selectors, settling
from purgecache.storage.base import (
    EVERYTHING,
    NO_CHANGES,
    Changes,
    EntryPage,
    SchemaTooNewError,
    StorageError,
)
from purgecache.storage.batching import WriteBatcher
from purgecache.storage.history import HistoryPage
from purgecache.storage.migrations import migrations, python_step, statements
from purgecache.storage.outbox import Claimed, Delivery
from purgecache.storage.receipts import Reported, StoredInventory, StoredReceipt
from purgecache.storage.selectors import AppliedSelector, Candidate, Pair, StoredSelector
from purgecache.storage.settling import Settled, Unsettled

T = TypeVar("T")
log = logging.getLogger("purgecache")

# Python's sqlite3 binds an int, float or str directly but looks every other value (None,
# bytes) up in its adapter registry first; without an entry there it asks the value's type
# for `__conform__`, about 3k instructions each (it formats an AttributeError and drops it):
# 9 of a purge's 20 values, 7% of purgeCache's instructions. An entry makes it ~1k. These
# return the value itself, so what is stored does not change (None -> NULL, bytes -> BLOB).
_NONE_TO_NONE: Callable[[None], None] = cast("Callable[[None], None]", {}.get)  # C, no frame
sqlite3.register_adapter(type(None), _NONE_TO_NONE)
sqlite3.register_adapter(bytes, bytes)  # bytes(b) is b for bytes

_COLUMNS = "worker_pool_id, cache_name, before, expires"
_READ = f"{_COLUMNS}, until_applied"  # a pool's requests, with their until-applied policy
WAL_LOOK_INTERVAL = 0.005  # seconds between looks at the WAL file: bounds the stat calls
CHECKPOINT_INTERVAL = 0.25  # seconds between background checkpoints while the WAL changes
WRITER_CHECKPOINT_PAGES = 16_384  # 64 MiB of 4 KiB pages: the writer's own, last-resort one
RESTART_FRAMES = 4_096  # 16 MiB of WAL: then the writer's thread checkpoints all of it
_UPSERT_SET = (
    " ON CONFLICT (worker_pool_id, cache_name) "
    "DO UPDATE SET before = excluded.before, expires = excluded.expires, wire = excluded.wire, "
    "until_applied = excluded.until_applied, converged_at = NULL"
)
_UPSERT = (
    f"INSERT INTO cache_purges ({_COLUMNS}, wire, until_applied) VALUES (?, ?, ?, ?, ?, ?)"
    + _UPSERT_SET
)
_LOG = (
    f"INSERT INTO purge_history ({history.COLUMNS}, {history.END_COLUMNS}) "
    f"VALUES ({', '.join('?' * len(history.WRITTEN))})"
)
# The same for the common purge (normal policy; a history event with no reason, link or
# selector, open; its policy is bound: an int, see `history.event_row`): its NULLs written in
# the SQL, not bound. Binding None costs sqlite3 an adapter look-up (about 1k instructions,
# see `register_adapter` above) per value: 7 per purge.
_UPSERT_PLAIN = (
    f"INSERT INTO cache_purges ({_COLUMNS}, wire, until_applied) VALUES (?, ?, ?, ?, ?, NULL)"
    + _UPSERT_SET
)
_EXTRAS = 4  # the last fields of an event row (reason, link, selector patterns): None on v1
_NO_EXTRAS = (None,) * _EXTRAS
_BOUND = history.COLUMNS.count(",") + 1 - _EXTRAS
_LOG_PLAIN = (
    f"INSERT INTO purge_history ({history.COLUMNS}, {history.END_COLUMNS}) "
    f"VALUES ({', '.join('?' * _BOUND)}, {', '.join(['NULL'] * (_EXTRAS + 2))})"
)
_END = history.END.format(mark="?")
_RECEIPT = receipts.UPSERT_RECEIPT.format(marks=", ".join("?" * 11))
_WORKER = receipts.UPSERT_WORKER.format(marks="?, ?, ?, ?")
_RECEIPTS = receipts.RECEIPTS.format(mark="?")
_CLEAR_INVENTORY = receipts.CLEAR_INVENTORY.format(mark="?")
_INSERT_INVENTORY = receipts.INSERT_INVENTORY.format(marks=", ".join(["?"] * 8))
_INVENTORY = receipts.INVENTORY.format(mark="?")
_FETCH = fetches.UPSERT_FETCH.format(marks="?, ?, ?, ?, ?")
_TALLY_QUERIES = fetches.spelt(":%s")
_EVENT = outbox.INSERT_EVENT.format(marks="?, ?, ?, ?, ?, ?")
_HAS_TARGETS = outbox.HAS_TARGETS
_EXPIRE = settling.EXPIRE.format(mark="?")
_CANDIDATES = selectors.sql(selectors.CANDIDATES, "?")
_SELECTOR = selectors.sql(selectors.UPSERT_SELECTOR, "?")
_POOL_SELECTORS = selectors.sql(selectors.POOL_SELECTORS, "?")
_EXPIRE_SELECTORS = selectors.sql(selectors.EXPIRE, "?")
_OPEN_SELECTOR = selectors.sql(selectors.OPEN_SELECTOR, "?")
_SELECTOR_PAIRS = selectors.sql(selectors.SELECTOR_PAIRS, "?")
_WITHDRAW = selectors.sql(selectors.WITHDRAW, "?")
_CANCEL_PAIR = selectors.sql(selectors.CANCEL_PAIR, "?")
_EXCEPT = selectors.sql(selectors.EXCEPT, "?")
_POOL_EXCEPTIONS = selectors.sql(selectors.POOL_EXCEPTIONS, "?")
_EXPIRE_EXCEPTIONS = selectors.sql(selectors.EXPIRE_EXCEPTIONS, "?")
_MERGE = (
    f"INSERT INTO cache_purges ({_COLUMNS}, wire, until_applied) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (worker_pool_id, cache_name) "
    "DO UPDATE SET wire = iif(excluded.before > before, excluded.wire, wire), "
    "until_applied = iif(excluded.before > before, excluded.until_applied, until_applied), "
    "before = max(before, excluded.before), expires = max(expires, excluded.expires)"
)
_POOL = (
    f"SELECT {_READ} FROM cache_purges WHERE worker_pool_id = ? AND expires > ? ORDER BY cache_name"
)
# Pages of requests for `db copy`, with their until-applied policy when the schema has it.
_FIRST_PAGE = "SELECT {columns} FROM cache_purges WHERE expires > ? ORDER BY 1, 2 LIMIT ?"
_NEXT_PAGE = (
    "SELECT {columns} FROM cache_purges WHERE (worker_pool_id, cache_name) > (?, ?) "
    "AND expires > ? ORDER BY 1, 2 LIMIT ?"
)
# Entries as bytes: a purgecache of schema 2 may still be writing them as text during an
# upgrade. The key of a page's last row comes from a second query in the same read
# transaction: reading the key columns of every row nearly doubled a page's cost.
_FIRST_ENTRIES = (
    "SELECT CAST(wire AS BLOB) FROM cache_purges WHERE expires > ? "
    "ORDER BY worker_pool_id, cache_name LIMIT ?"
)
_NEXT_ENTRIES = (
    "SELECT CAST(wire AS BLOB) FROM cache_purges WHERE (worker_pool_id, cache_name) > (?, ?) "
    "AND expires > ? ORDER BY worker_pool_id, cache_name LIMIT ?"
)
# (`+expires`: walk the primary key; the covering index on `expires` would need a sort.)
_FIRST_KEY = (
    "SELECT worker_pool_id, cache_name FROM cache_purges WHERE +expires > ? "
    "ORDER BY 1, 2 LIMIT 1 OFFSET ?"
)
_NEXT_KEY = (
    "SELECT worker_pool_id, cache_name FROM cache_purges "
    "WHERE (worker_pool_id, cache_name) > (?, ?) AND expires > ? ORDER BY 1, 2 LIMIT 1 OFFSET ?"
)


def sqlite_path(url: str) -> Path:
    """`sqlite:///relative.db` -> relative.db, `sqlite:////abs/x.db` -> /abs/x.db."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ValueError(
            f"not a SQLite URL: {url!r} (use sqlite:///relative.db or sqlite:////abs.db)"
        )
    return Path(url[len(prefix) :])


MIGRATIONS = migrations("sqlite")
LATEST_VERSION = MIGRATIONS[-1].number


def _row(row: tuple[Any, ...]) -> PurgeRequest:
    return PurgeRequest(*row)  # a listing page's row: with its policy, or without (schema < 10)


def _key_and_times(request: PurgeRequest) -> tuple[str, str, int, int]:
    return (request.worker_pool_id, request.cache_name, request.before, request.expires)


def _upsert_row(request: PurgeRequest, entry: bytes) -> tuple[object, ...]:
    return (*_key_and_times(request), entry, request.until_applied)


def _write_purges(conn: sqlite3.Connection, rows: Sequence[PurgeRow]) -> None:
    """Purges, their history events, the end of each purge they supersede (the stored one's
    by the `cache_purges_supersede` trigger) and (only when a target will deliver them:
    building one costs about as much as writing the purge) their `purge.created` events,
    inside the caller's transaction."""
    if any(r.until_applied is not None for r, _, _ in rows):
        conn.executemany(_UPSERT, [_upsert_row(r, e) for r, e, _ in rows])
    else:  # its trigger ends the stored purge each replaces
        conn.executemany(_UPSERT_PLAIN, [(*_key_and_times(r), e) for r, e, _ in rows])
    logged = [history.event_row(r, o) for r, _, o in rows]
    ended = history.superseded_in_batch([row[:3] for row in logged]) if len(rows) > 1 else [None]
    if ended.count(None) == len(ended) and all(row[-_EXTRAS:] == _NO_EXTRAS for row in logged):
        conn.executemany(_LOG_PLAIN, [row[:-_EXTRAS] for row in logged])
    else:
        both = zip(logged, ended, strict=True)
        conn.executemany(_LOG, [(*row, *history.ended_columns(t)) for row, t in both])
    if conn.execute(_HAS_TARGETS).fetchone() is not None:
        conn.executemany(_EVENT, [events.created(r, o) for r, _, o in rows])


def _settle(conn: sqlite3.Connection, decided: Sequence[Settled], now: int) -> None:
    """The convergence sweep's decisions, each guarded by the `before` it was made for."""
    mark = settling.MARK_CONVERGED.format(mark="?")
    remove = settling.REMOVE.format(mark="?")
    for settled in decided:
        guard = settling.guard(settled)
        if settled.converged is not None and conn.execute(mark, (now, *guard)).rowcount:
            conn.execute(_EVENT, settled.converged)
        if settled.end is not None and conn.execute(remove, guard).rowcount:
            end, expired = settling.removed(settled, now)
            conn.execute(_END, end)
            if expired is not None:
                conn.execute(_EVENT, expired)


def _entry_page(
    conn: sqlite3.Connection, after: tuple[str, str] | None, limit: int, now: int
) -> EntryPage:
    """A listing page, its rows and its last key read in one snapshot."""
    where = (now,) if after is None else (after[0], after[1], now)
    conn.execute("BEGIN")
    try:
        query = _FIRST_ENTRIES if after is None else _NEXT_ENTRIES
        entries = [row[0] for row in conn.execute(query, (*where, limit + 1)).fetchall()]
        if len(entries) <= limit:
            return EntryPage(entries, None)
        del entries[limit:]
        key_query = _FIRST_KEY if after is None else _NEXT_KEY
        ((pool, name),) = conn.execute(key_query, (*where, limit - 1)).fetchall()
        return EntryPage(entries, (pool, name))
    finally:
        conn.execute("COMMIT")


def _history_page(
    conn: sqlite3.Connection, query: HistoryFilter, after: tuple[int, int] | None, limit: int
) -> HistoryPage:
    """A history page and its filter's total, read in one snapshot."""
    count, count_args = history.count_sql(query, "?")
    page, page_args = history.page_sql(query, after, limit, "?")
    conn.execute("BEGIN")
    try:
        (total,) = conn.execute(count, count_args).fetchone()
        rows = conn.execute(page, page_args).fetchall()
    finally:
        conn.execute("COMMIT")
    return history.history_page(rows, int(total), limit)


PurgeRow = tuple[PurgeRequest, bytes, Provenance]  # a purge, its wire entry, who asked


def connect(path: Path, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """Open (creating if needed) the database file with the settings every process uses."""
    conn = None
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA busy_timeout=10000")
    except sqlite3.Error as error:
        if conn is not None:
            conn.close()
        raise StorageError(f"cannot open SQLite database {path}: {error}") from error
    return conn


def upgrade(conn: sqlite3.Connection) -> int:
    """Apply the migrations the database lacks; return the schema version it ends at."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        if current > LATEST_VERSION:
            raise SchemaTooNewError(
                f"database schema version {current} is newer than this purgecache knows "
                f"({LATEST_VERSION}); refusing to downgrade: run a newer purgecache"
            )
        for migration in MIGRATIONS:
            if migration.number > current:
                for statement in statements(migration.sql):
                    conn.execute(statement)
                if migration.module is not None:
                    python_step(migration)(conn)
                conn.execute(f"PRAGMA user_version={migration.number}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return max(int(current), LATEST_VERSION)


def _tally(conn: sqlite3.Connection, values: dict[str, object]) -> fetches.PurgeTally:
    reporters, straggling, fetchers, fetching = (
        conn.execute(query, values).fetchall() for query in _TALLY_QUERIES
    )
    return fetches.PurgeTally(reporters[0], straggling, fetchers[0], fetching)


def _checkpoint(conn: sqlite3.Connection) -> int:
    """A passive checkpoint; how many frames the WAL holds (copied or not: it starts over
    only at a write that finds every frame copied, which frames written during the
    checkpoint prevent)."""
    # every row fetched: a statement left unfinished would keep the WAL in use
    ((_, frames, _),) = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    return max(int(frames), 0)


def _never_waiting(path: Path, *pragmas: str) -> sqlite3.Connection:
    """A connection that never waits for a lock, not even while being set up (busy timeout
    0 from the start; the file's WAL mode was set by `connect`), with these PRAGMAs."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)
    try:
        for pragma in pragmas:
            conn.execute(f"PRAGMA {pragma}")
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def _busy(error: sqlite3.Error) -> bool:
    """Whether `error` says the file is locked by another connection (worth waiting for)."""
    code = error.sqlite_errorcode & 0xFF if isinstance(error, sqlite3.OperationalError) else 0
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class SqliteStorage:
    """The Storage interface on one SQLite file."""

    def __init__(self, path: Path, synchronous: str = "NORMAL") -> None:
        self.path = path
        self._synchronous = synchronous
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._checkpointer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint")
        self._checkpoint_conn: sqlite3.Connection | None = None
        self._checkpoints: asyncio.Task[None] | None = None
        self._conn: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None  # used by the event loop's thread only
        self._loop_writer: sqlite3.Connection | None = None  # the same: purge and report batches
        self._batcher: WriteBatcher[PurgeRow] = WriteBatcher(self._write_batch)
        self._reports: WriteBatcher[Reported] = WriteBatcher(self._write_reports)
        self._wal_frames = 0  # frames in the WAL at the last checkpoint (any thread's)
        self._wal = Path(f"{path}-wal")
        self._wal_seen = self._wal_state()
        self._next_look = 0.0

    def _wal_state(self) -> tuple[int, int, int] | None:
        try:
            stat = os.stat(self._wal)
        except OSError:
            return None
        return (stat.st_ino, stat.st_size, stat.st_mtime_ns)

    async def start(self) -> None:
        """Checkpoint in the background from here on (`changes` needs no task: it looks at
        the write-ahead log)."""
        await self._run(lambda c: c.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}"))
        self._checkpoints = asyncio.get_running_loop().create_task(self._checkpoint_forever())

    async def _checkpoint_forever(self) -> None:
        """A passive checkpoint (it never waits for, nor blocks, the writer) whenever the WAL
        changed since the last look (and first of all what it holds at start); the first
        failure is logged."""
        loop = asyncio.get_running_loop()
        seen: tuple[int, int, int] | None = None
        failed = False
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL)
            state = self._wal_state()
            if state is None or state == seen:
                continue
            seen = state
            try:
                await loop.run_in_executor(self._checkpointer, self._checkpoint)
            except sqlite3.Error as error:
                if not failed:
                    log_event(log, logging.WARNING, "sqlite-checkpoint-failed", error=str(error))
                failed = True

    def _checkpoint(self) -> None:
        """On the checkpointer's thread: copy what the WAL holds into the database file."""
        if self._checkpoint_conn is None:
            self._checkpoint_conn = _never_waiting(self.path)
        self._wal_frames = _checkpoint(self._checkpoint_conn)

    def changes(self) -> Changes:
        """Every commit by any process touches the WAL file; a changed WAL means any pool may
        have changed (one stat call at most every few milliseconds, no database round trip)."""
        now = time.monotonic()
        if now < self._next_look:
            return NO_CHANGES
        self._next_look = now + WAL_LOOK_INTERVAL
        state = self._wal_state()
        if state == self._wal_seen:
            return NO_CHANGES
        self._wal_seen = state
        return EVERYTHING

    def _read_now(self, work: Callable[[sqlite3.Connection], T]) -> T | None:
        """Run a read on the calling (event loop) thread; None when the database is busy."""
        try:
            if self._reader is None:
                self._reader = _never_waiting(self.path, "query_only=1")
            return work(self._reader)
        except sqlite3.Error as error:
            if _busy(error):
                return None
            raise StorageError(f"SQLite: {error}") from error

    async def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """A read: at once on this thread, or on the writer's thread if the file is busy."""
        done = self._read_now(work)
        return done if done is not None else await self._run(work)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = connect(self.path, self._synchronous)
        return self._conn

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            try:
                return work(self._connection())
            except sqlite3.Error as error:
                raise StorageError(f"SQLite: {error}") from error

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def upgrade(self) -> int:
        """Bring the schema up to date (see `upgrade`)."""
        return await self._run(upgrade)

    async def schema_version(self) -> int:
        return await self._run(lambda c: int(c.execute("PRAGMA user_version").fetchone()[0]))

    async def purge(self, request: PurgeRequest, entry: bytes, origin: Provenance) -> None:
        await self._batcher.write((request, entry, origin))

    async def _write_batch(self, rows: list[PurgeRow]) -> None:
        def write(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                _write_purges(conn, rows)

        await self._commit(write)

    async def _commit(self, write: Callable[[sqlite3.Connection], None]) -> None:
        """A write transaction that requests wait for (a batch of purges or reports): on this
        thread when that cannot wait (`_write_now`), else on the writer's thread, which then
        also starts a grown WAL over (see the module's docstring)."""

        def write_and_restart(conn: sqlite3.Connection) -> None:
            write(conn)
            if self._wal_frames > RESTART_FRAMES:
                with contextlib.suppress(sqlite3.Error):  # the batch is committed: a try
                    self._wal_frames = _checkpoint(conn)

        if not self._write_now(write):
            await self._run(write_and_restart)

    def _write_now(self, work: Callable[[sqlite3.Connection], None]) -> bool:
        """Run a write transaction on the calling (event loop) thread when that cannot wait:
        False, with nothing written, when it could (a commit that fsyncs, the file locked by
        another writer) or the writer's thread should (a WAL to start over)."""
        if self._synchronous != "NORMAL" or self._wal_frames > RESTART_FRAMES:
            return False
        try:
            if self._loop_writer is None:  # the checkpoints are the checkpointer's
                self._loop_writer = _never_waiting(
                    self.path, f"synchronous={self._synchronous}", "wal_autocheckpoint=0"
                )
            work(self._loop_writer)
        except sqlite3.Error as error:
            writer = self._loop_writer
            if writer is not None and writer.in_transaction:  # a failed COMMIT leaves it open
                with contextlib.suppress(sqlite3.Error):  # this error is the one to report
                    writer.rollback()
            if _busy(error):
                return False
            raise StorageError(f"SQLite: {error}") from error
        return True

    async def purge_selector(self, selector: StoredSelector, rows: Sequence[PurgeRow]) -> None:
        def write(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                if rows:
                    _write_purges(conn, rows)
                conn.execute(_SELECTOR, selector)

        await self._run(write)

    async def selector_candidates(
        self, pool_prefix: str, active_since: int, now: int, limit: int
    ) -> list[Candidate]:
        args = selectors.candidates_args(pool_prefix, active_since, now, limit)
        rows = await self._read_aside(lambda c: c.execute(_CANDIDATES, args).fetchall())
        return [selectors.read_candidate(row) for row in rows]

    async def _read_aside(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """A long read (it may walk the whole history: SQLite has no history index by pool)
        on a thread and a read-only connection of its own: neither the event loop nor the
        writer waits for it (in WAL mode it does not block writers)."""

        def read() -> T:
            try:
                conn = sqlite3.connect(self.path, isolation_level=None, timeout=10)
                try:
                    conn.execute("PRAGMA query_only=1")
                    return work(conn)
                finally:
                    conn.close()
            except sqlite3.Error as error:
                raise StorageError(f"SQLite: {error}") from error

        return await asyncio.to_thread(read)

    async def pool_selectors(
        self, worker_pool_id: str, since: int, now: int, limit: int
    ) -> list[tuple[str, str, int]]:
        args = (now, since, worker_pool_id, limit)
        rows = await self._read(lambda c: c.execute(_POOL_SELECTORS, args).fetchall())
        return [(str(pool), str(cache), int(before)) for pool, cache, before in rows]

    async def selector_purges(
        self, pool_pattern: str, cache_pattern: str, now: int
    ) -> tuple[int, list[Pair]] | None:
        def read(conn: sqlite3.Connection) -> tuple[int, list[Pair]] | None:
            row = conn.execute(_OPEN_SELECTOR, (pool_pattern, cache_pattern, now)).fetchone()
            if row is None:
                return None
            args = (int(row[0]), pool_pattern, cache_pattern, now)
            return args[0], [(str(p), str(c)) for p, c in conn.execute(_SELECTOR_PAIRS, args)]

        return await self._read(read)

    async def cancel_selector(
        self, applied: AppliedSelector, pairs: Sequence[Pair], now: int, origin: Provenance
    ) -> list[Pair] | None:
        def delete(conn: sqlite3.Connection) -> list[Pair] | None:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                if conn.execute(_WITHDRAW, (*applied, now)).rowcount == 0:
                    return None
                before = applied.before
                gone = [p for p in pairs if conn.execute(_CANCEL_PAIR, (*p, before, now)).rowcount]
                for pool, cache in gone:
                    conn.execute(_END, history.end_row(pool, cache, before, now, CANCELLED))
                    conn.execute(_EVENT, events.cancelled(pool, cache, before, now, origin))
            return gone

        return await self._run(delete)

    async def selector_exceptions(
        self, worker_pool_id: str, now: int
    ) -> list[tuple[str, str, int, str]]:
        rows = await self._read(
            lambda c: c.execute(_POOL_EXCEPTIONS, (worker_pool_id, now)).fetchall()
        )
        return [(str(p), str(c), int(b), str(n)) for p, c, b, n in rows]

    async def put_many(self, rows: Sequence[tuple[PurgeRequest, bytes]]) -> None:
        values = [_upsert_row(request, entry) for request, entry in rows]

        def write(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(_MERGE, values)

        await self._run(write)

    async def purge_requests(self, worker_pool_id: str, now: int) -> list[PurgeRequest]:
        rows = await self._read(lambda c: c.execute(_POOL, (worker_pool_id, now)).fetchall())
        return [_row(r) for r in rows]

    async def list_page(
        self, after: tuple[str, str] | None, limit: int, now: int, *, with_policy: bool = True
    ) -> list[PurgeRequest]:
        query, args = (
            (_FIRST_PAGE, (now, limit))
            if after is None
            else (_NEXT_PAGE, (after[0], after[1], now, limit))
        )
        query = query.format(columns=_READ if with_policy else _COLUMNS)
        rows = await self._run(lambda c: c.execute(query, args).fetchall())
        return [_row(r) for r in rows]

    async def list_entries(self, after: tuple[str, str] | None, limit: int, now: int) -> EntryPage:
        return await self._read(lambda conn: _entry_page(conn, after, limit, now))

    async def expire(self, now: int) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                gone = conn.execute(_EXPIRE, (now,)).fetchall()
                ends, expired = settling.expired(gone, now)
                conn.executemany(_END, ends)
                conn.executemany(_EVENT, expired)
                conn.execute(_EXPIRE_SELECTORS, (now,))
                conn.execute(_EXPIRE_EXCEPTIONS)
            return len(gone)

        return await self._run(delete)

    async def unsettled(self, now: int) -> list[Unsettled]:
        query = settling.UNSETTLED.format(mark="?")
        rows = await self._read(lambda c: c.execute(query, (now, now)).fetchall())
        return [settling.read_unsettled(row) for row in rows]

    async def settle(self, decided: Sequence[Settled], now: int) -> None:
        def write(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                _settle(conn, decided, now)

        await self._run(write)

    async def cancel(
        self, pair: Pair, now: int, origin: Provenance, covering: Sequence[AppliedSelector] = ()
    ) -> int | None:
        worker_pool_id, cache_name = pair
        cancel = settling.CANCEL.format(mark="?")
        exceptions = [(*selector, worker_pool_id, cache_name) for selector in covering]

        def delete(conn: sqlite3.Connection) -> int | None:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                row = conn.execute(cancel, (worker_pool_id, cache_name, now)).fetchone()
                if row is None:
                    return None
                key = (worker_pool_id, cache_name, int(row[0]))
                conn.execute(_END, history.end_row(*key, now, CANCELLED))
                conn.execute(_EVENT, events.cancelled(*key, now, origin))
                conn.executemany(_EXCEPT, exceptions)
            return key[2]

        return await self._run(delete)

    async def purge_history(
        self, query: HistoryFilter, after: tuple[int, int] | None, limit: int
    ) -> HistoryPage:
        return await self._read(lambda conn: _history_page(conn, query, after, limit))

    async def prune_history(self, before: int) -> int:
        prune = history.PRUNE.format(mark="?")
        prune_events = outbox.sql(outbox.PRUNE, "?")

        def delete(conn: sqlite3.Connection) -> int:
            conn.execute(prune_events, (before,))
            return conn.execute(prune, (before,)).rowcount

        return await self._run(delete)

    async def report_worker_sync(self, report: WorkerReport, now: int) -> None:
        await self._reports.write(receipts.report_rows(report, now))

    async def _write_reports(self, batch: list[Reported]) -> None:
        cleared, held = receipts.inventories(batch)

        def write(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(_RECEIPT, [row for report in batch for row in report.receipts])
                conn.executemany(_WORKER, [report.worker for report in batch])
                conn.executemany(_CLEAR_INVENTORY, cleared)
                conn.executemany(_INSERT_INVENTORY, held)
                if conn.execute(_HAS_TARGETS).fetchone() is not None:
                    conn.executemany(_EVENT, receipts.applied_events(batch))

        await self._commit(write)

    async def worker_receipts(self, worker_pool_id: str) -> list[StoredReceipt]:
        rows = await self._read(lambda c: c.execute(_RECEIPTS, (worker_pool_id,)).fetchall())
        return [receipts.read_receipt(row) for row in rows]

    async def worker_inventory(self, worker_pool_id: str) -> list[StoredInventory]:
        rows = await self._read(lambda c: c.execute(_INVENTORY, (worker_pool_id,)).fetchall())
        return [receipts.read_inventory(row) for row in rows]

    async def record_fetches(self, rows: Sequence[fetches.FetchRow]) -> None:
        def write(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(_FETCH, rows)

        await self._run(write)

    async def purge_tallies(
        self, worker_pool_id: str, purges: Sequence[tuple[str, int]], active_since: int, shown: int
    ) -> list[fetches.PurgeTally]:
        def read(conn: sqlite3.Connection) -> list[fetches.PurgeTally]:
            with conn:
                conn.execute("BEGIN")  # one snapshot
                return [
                    _tally(
                        conn,
                        {
                            "pool": worker_pool_id,
                            "cache": cache,
                            "before": before,
                            "since": active_since,
                            "limit": shown,
                        },
                    )
                    for cache, before in purges
                ]

        return await self._read(read)

    async def prune_workers(self, before: int) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                gone = [
                    conn.execute(sql.format(mark="?"), (before,)).rowcount for sql in fetches.PRUNE
                ]
            return gone[0] + gone[2]

        return await self._run(delete)

    async def add_event_targets(self, targets: Sequence[str]) -> None:
        def write(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(outbox.sql(outbox.ADD_TARGET, "?"), [(t,) for t in targets])

        await self._run(write)

    async def event_targets(self) -> list[str]:
        def read(conn: sqlite3.Connection) -> list[str]:
            return [str(row[0]) for row in conn.execute(outbox.TARGETS)]

        return await self._run(read)

    async def remove_event_targets(self, targets: Sequence[str]) -> int:
        among = f"IN ({', '.join('?' * len(targets))})"

        def write(conn: sqlite3.Connection) -> int:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(outbox.REMOVE_TARGETS.format(m=among), tuple(targets))
                return conn.execute(outbox.DROP_DELIVERIES.format(m=among), tuple(targets)).rowcount

        return await self._run(write)

    async def claim_events(self, target: str, now: int, lease_ms: int, limit: int) -> list[Claimed]:
        due = outbox.sql(outbox.DUE, "?")
        lease = outbox.sql(outbox.LEASE, "?", due=due)

        def claim(conn: sqlite3.Connection) -> list[Claimed]:
            with conn:
                conn.execute("BEGIN IMMEDIATE")  # the write lock: one claimer at a time
                leased = conn.execute(lease, (now + lease_ms, target, target, now, now, limit))
                attempts = {int(seq): int(n) for seq, n in leased.fetchall()}
                if not attempts:
                    return []
                query = outbox.CLAIMED.format(seqs=", ".join("?" * len(attempts)))
                rows = conn.execute(query, list(attempts)).fetchall()
            return outbox.claimed(rows, attempts)

        return await self._run(claim)

    async def event_delivered(self, target: str, seq: int) -> None:
        delivered = outbox.sql(outbox.DELIVERED, "?")
        await self._run(lambda c: c.execute(delivered, (target, seq)))

    async def event_failed(
        self, target: str, seq: int, attempts: int, next_at: int, failed_at: int | None, error: str
    ) -> None:
        failed = outbox.sql(outbox.FAILED, "?")
        args = (attempts, next_at, failed_at, error, target, seq)
        await self._run(lambda c: c.execute(failed, args))

    async def event_deliveries(self, limit: int) -> list[Delivery]:
        listing = outbox.sql(outbox.LISTING, "?")
        rows = await self._run(lambda c: c.execute(listing, (limit,)).fetchall())
        return [outbox.delivery(row) for row in rows]

    async def retry_events(self, target: str | None, event_id: str | None) -> int:
        retry = outbox.sql(outbox.RETRY, "?")
        args = outbox.match_args(target, event_id)
        return int((await self._run(lambda c: c.execute(retry, args))).rowcount)

    async def drop_events(self, target: str | None, event_id: str | None, pending: bool) -> int:
        drop = outbox.sql(outbox.DROP, "?")
        args = (int(pending), *outbox.match_args(target, event_id))
        return int((await self._run(lambda c: c.execute(drop, args))).rowcount)

    async def outbox_depth(self) -> tuple[int, int]:
        depth = outbox.DEPTH
        row = await self._read(lambda c: c.execute(depth).fetchone())
        return int(row[0] or 0), int(row[1] or 0)

    async def count_open(self, now: int) -> int:
        query = "SELECT count(*) FROM cache_purges WHERE expires > ?"
        return await self._run(lambda c: int(c.execute(query, (now,)).fetchone()[0]))

    async def check(self) -> None:
        await self._run(lambda c: c.execute("SELECT 1 FROM cache_purges LIMIT 1").fetchone())

    async def probe(self) -> None:
        await self.check()  # a local file has no connections to drop (and never an outage)

    async def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.cancel()
            await asyncio.gather(self._checkpoints, return_exceptions=True)
            self._checkpoints = None

        def unhook() -> None:
            if self._checkpoint_conn is not None:
                self._checkpoint_conn.close()
                self._checkpoint_conn = None

        await asyncio.get_running_loop().run_in_executor(self._checkpointer, unhook)
        self._checkpointer.shutdown(wait=True)
        for conn in (self._reader, self._loop_writer):
            if conn is not None:
                conn.close()
        self._reader = self._loop_writer = None

        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, shut)
        self._executor.shutdown(wait=True)

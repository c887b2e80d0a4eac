"""The until-applied policy in the purge history, as every backend stores it: each event
records whether its purge was made with the policy (a purge written alone or in a batch,
the pairs of a selector purge), and migration 13 fills it in for the events recorded before
it (only those still open with the policy)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from purgecache.model import HistoryFilter, Provenance, PurgeRequest
from purgecache.storage import SqliteStorage, Storage, postgres, sqlite
from purgecache.storage.postgres import PostgresStorage
from purgecache.storage.selectors import StoredSelector
from storage.conftest import BACKENDS, new_storage

from support.sqlite_files import sqlite_file

NOW = 1_900_000_000_000
ORIGIN = Provenance("purgeCache", "alice")


def request(cache: str, before: int, kept: bool) -> PurgeRequest:
    """A purge of pool `h/w`; `kept`: until applied (its retention ends 10 ms in)."""
    if kept:
        return PurgeRequest("h/w", cache, before, before + 900, before + 10)
    return PurgeRequest("h/w", cache, before, before + 10)


async def policies(storage: Storage, pool: str = "h/w") -> list[tuple[str, int, bool]]:
    """(cache, time, until applied) of a pool's history, oldest first."""
    page = await storage.purge_history(HistoryFilter(pool), None, 100)
    return [(e.cache_name, e.time - NOW, e.until_applied) for e in reversed(page.events)]


def test_a_purge_alone_records_its_policy(storage: Storage, runner: asyncio.Runner) -> None:
    """A purge written by itself (the common, plain write for the normal policy) records
    whether it is kept until applied, and so does its next purge of the same cache."""

    async def scenario() -> list[tuple[str, int, bool]]:
        for cache, before, kept in [("a", 0, True), ("b", 1, False), ("a", 2, False)]:
            purge = request(cache, NOW + before, kept)
            await storage.purge(purge, purge.to_entry(), ORIGIN)
        return await policies(storage)

    assert runner.run(scenario()) == [("a", 0, True), ("b", 1, False), ("a", 2, False)]


def test_purges_of_one_batch_record_each_its_own_policy(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """Purges queued into one write batch, with either policy, with or without a reason,
    record each its own policy (the batch takes the general write path)."""

    async def scenario() -> list[tuple[str, int, bool]]:
        why = ORIGIN._replace(endpoint="createPurge", reason="why")
        purges = [
            (request(f"c{i}", NOW + i, i % 2 == 0), why if i == 3 else ORIGIN) for i in range(6)
        ]
        await asyncio.gather(*(storage.purge(p, p.to_entry(), o) for p, o in purges))
        return sorted(await policies(storage))

    assert runner.run(scenario()) == [(f"c{i}", i, i % 2 == 0) for i in range(6)]


def test_a_selector_purge_records_the_policy_of_each_pair(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """The history events of a selector purge's pairs record the policy each pair was written
    with (a pair whose open purge was kept until applied stays so)."""
    origin = ORIGIN._replace(
        endpoint="createSelectorPurge", selector_pool_pattern="h/*", selector_cache_pattern="*"
    )

    async def scenario() -> list[tuple[str, int, bool]]:
        rows = [
            (r, r.to_entry(), origin) for r in (request("x", NOW, True), request("y", NOW, False))
        ]
        await storage.purge_selector(StoredSelector("h/*", "*", "h/", NOW, NOW + 900), rows)
        return await policies(storage)

    assert sorted(runner.run(scenario())) == [("x", 0, True), ("y", 0, False)]


def _at_schema_12(
    storage: Storage, runner: asyncio.Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migrate `storage` only as far as schema 12 (the runner applies the module's list)."""
    module = sqlite if isinstance(storage, SqliteStorage) else postgres
    with monkeypatch.context() as patched:
        patched.setattr(module, "MIGRATIONS", [m for m in module.MIGRATIONS if m.number <= 12])
        patched.setattr(module, "LATEST_VERSION", 12)
        assert runner.run(storage.upgrade()) == 12


# Events of schema 12, and the requests still open: `kept` is open with the policy; `normal`
# open without it; `superseded` was kept until applied but a later purge (`kept`'s) replaced
# it; `ended` was kept and has expired (its policy is lost); `other` is a request of another
# time than its event.
_EVENTS = [("kept", 10), ("kept", 5), ("normal", 10), ("ended", 10), ("other", 10)]
_OPEN = [("kept", 10, NOW + 50), ("normal", 10, None), ("other", 11, NOW + 50)]


def _write_schema_12_rows(storage: Storage) -> None:
    events = [("h/w", cache, NOW + at) for cache, at in _EVENTS]
    requests = [("h/w", cache, NOW + at, NOW + 99, kept) for cache, at, kept in _OPEN]
    insert_event = (
        "INSERT INTO purge_history (worker_pool_id, cache_name, purged_at, endpoint) "
        "VALUES ({m}, {m}, {m}, 'purgeCache')"
    )
    insert_request = (
        "INSERT INTO cache_purges (worker_pool_id, cache_name, before, expires, wire, "
        "until_applied) VALUES ({m}, {m}, {m}, {m}, '{{}}', {m})"
    )
    if isinstance(storage, SqliteStorage):
        with sqlite_file(storage.path, isolation_level=None) as db:
            db.executemany(insert_event.format(m="?"), events)
            db.executemany(insert_request.format(m="?"), requests)
        db.close()
    else:
        assert isinstance(storage, PostgresStorage)
        with psycopg.connect(storage.url, autocommit=True) as conn, conn.cursor() as cursor:
            cursor.executemany(insert_event.format(m="%s"), events)
            cursor.executemany(insert_request.format(m="%s"), requests)


@pytest.mark.parametrize("backend", BACKENDS)
def test_migration_13_marks_only_the_events_still_open_until_applied(
    backend: str, tmp_path: Path, runner: asyncio.Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Upgrading a schema-12 database: an event whose purge is still open with the policy
    (its pool's and cache's request of the event's time) is marked until applied; every other
    one, ended (superseded, expired) or open with the normal policy, is not."""
    storage = new_storage(backend, tmp_path / "schema12.db")
    _at_schema_12(storage, runner, monkeypatch)
    _write_schema_12_rows(storage)

    async def scenario() -> list[tuple[str, int, bool]]:
        assert await storage.upgrade() >= 13
        try:
            return await policies(storage)
        finally:
            await storage.close()

    assert sorted(runner.run(scenario())) == [
        ("ended", 10, False),
        ("kept", 5, False),
        ("kept", 10, True),
        ("normal", 10, False),
        ("other", 10, False),
    ]

"""The event outbox, on SQLite and PostgreSQL through the Storage interface: events are written
with the purge, receipt or expiry they describe (a batch of purges included) while a target is
registered and not otherwise, fanned out to every registered target, leased to one claimer at
a time, and kept until delivered; replayed receipts store their event once; failed deliveries
can be listed, retried and dropped; targets are only added, until removed (the `purgecache
events` commands too)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg
import pytest
from click.testing import CliRunner, Result

from purgecache.cli import main
from purgecache.model import CacheReceipt, HistoryFilter, Provenance, PurgeRequest, WorkerReport
from purgecache.storage import SqliteStorage, Storage
from purgecache.storage.postgres import PostgresStorage
from storage.test_contract import BACKENDS, NOW, new_storage

from support.sqlite_files import sqlite_file


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    """One event loop for the whole test."""
    with asyncio.Runner() as loop:
        yield loop


@pytest.fixture(params=BACKENDS)
def storage(
    request: pytest.FixtureRequest, tmp_path: Path, runner: asyncio.Runner
) -> Iterator[Storage]:
    """A migrated storage of each backend whose events go to two targets."""
    backend = new_storage(request.param, tmp_path / "outbox.db")
    runner.run(backend.upgrade())
    runner.run(backend.add_event_targets(["amqp", "webhook:http://x/"]))
    yield backend
    runner.run(backend.close())


def purge(pool: str, cache: str, before: int = NOW) -> PurgeRequest:
    return PurgeRequest(pool, cache, before, before + 1000)


def test_purges_write_created_events_in_their_batch(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """Purges sharing one batched transaction each get a `purge.created` event, fanned out to
    every target, with a body naming the pool, its halves and the reason."""
    origin = Provenance("createPurge", "alice", reason="disk full")

    async def write() -> None:
        await asyncio.gather(
            *(storage.purge(purge("p/w", f"c{i}"), b"{}", origin) for i in range(5))
        )

    runner.run(write())
    assert runner.run(storage.outbox_depth()) == (10, 0)
    claimed = runner.run(storage.claim_events("amqp", NOW + 1, 60_000, 100))
    assert sorted(c.event.cache_name for c in claimed) == [f"c{i}" for i in range(5)]
    body = orjson.loads(claimed[0].event.body)
    assert body["event"] == "purge.created"
    assert body["eventId"] == claimed[0].event.event_id
    assert (body["provisionerId"], body["workerType"]) == ("p", "w")
    assert (body["clientId"], body["reason"]) == ("alice", "disk full")


def test_a_lease_gives_each_delivery_to_one_claimer(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """A leased delivery is not claimed again until its lease runs out; delivered, it is gone
    for its target only."""
    runner.run(storage.purge(purge("p/w", "a"), b"{}", Provenance("purgeCache")))
    first = runner.run(storage.claim_events("amqp", NOW + 1, 1000, 10))
    assert len(first) == 1
    assert runner.run(storage.claim_events("amqp", NOW + 500, 1000, 10)) == []
    again = runner.run(storage.claim_events("amqp", NOW + 1001, 1000, 10))
    assert [c.seq for c in again] == [first[0].seq]
    runner.run(storage.event_delivered("amqp", first[0].seq))
    assert runner.run(storage.claim_events("amqp", NOW + 5000, 1000, 10)) == []
    assert len(runner.run(storage.claim_events("webhook:http://x/", NOW + 1, 1000, 10))) == 1


def test_concurrent_claims_never_share_a_delivery(storage: Storage, runner: asyncio.Runner) -> None:
    """Claims racing on the same due deliveries split them between them."""

    async def race() -> list[int]:
        await asyncio.gather(
            *(storage.purge(purge("p/w", f"c{i}"), b"{}", Provenance("x")) for i in range(20))
        )
        batches = await asyncio.gather(
            *(storage.claim_events("amqp", NOW + 1, 60_000, 3) for _ in range(10))
        )
        return [c.seq for batch in batches for c in batch]

    seqs = runner.run(race())
    assert len(seqs) == len(set(seqs)) == 20


def test_receipts_write_applied_events_once(storage: Storage, runner: asyncio.Runner) -> None:
    """A report's receipts are `purge.applied` events; the same report again adds none."""
    receipt = CacheReceipt("a", NOW, 2, 2048, None, 0, 1)
    report = WorkerReport("p/w", "g", "w1", (receipt,))
    runner.run(storage.report_worker_sync(report, NOW + 5))
    runner.run(storage.report_worker_sync(report, NOW + 9))
    claimed = runner.run(storage.claim_events("amqp", NOW + 10, 60_000, 10))
    assert len(claimed) == 1
    body = orjson.loads(claimed[0].event.body)
    assert (body["event"], body["workerId"], body["bytesFreed"]) == ("purge.applied", "w1", 2048)


def test_expiry_writes_expired_events(storage: Storage, runner: asyncio.Runner) -> None:
    """Each request the expiry removes is a `purge.expired` event of the same transaction."""
    runner.run(storage.purge(purge("p/w", "old"), b"{}", Provenance("x")))
    assert runner.run(storage.expire(NOW + 2000)) == 1
    kinds = [c.event.kind for c in runner.run(storage.claim_events("amqp", NOW + 3000, 1, 10))]
    assert "purge.expired" in kinds


def test_failed_deliveries_are_listed_retried_and_dropped(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """A delivery marked failed is no longer claimed; `retry` makes it due, `drop` removes
    failed ones (and, asked to, pending ones)."""
    runner.run(storage.purge(purge("p/w", "a"), b"{}", Provenance("x")))
    (claimed,) = runner.run(storage.claim_events("amqp", NOW + 1, 1000, 10))
    runner.run(storage.event_failed("amqp", claimed.seq, 7, NOW + 2, NOW + 1, "refused"))
    assert runner.run(storage.outbox_depth()) == (1, 1)
    assert runner.run(storage.claim_events("amqp", NOW + 10_000, 1000, 10)) == []
    listed = {
        (d.target, d.failed_at, d.last_error) for d in runner.run(storage.event_deliveries(10))
    }
    assert listed == {("amqp", NOW + 1, "refused"), ("webhook:http://x/", None, None)}
    assert runner.run(storage.retry_events("amqp", None)) == 1
    assert len(runner.run(storage.claim_events("amqp", NOW + 3, 1000, 10))) == 1
    runner.run(storage.event_failed("amqp", claimed.seq, 8, NOW + 2, NOW + 1, "refused"))
    assert runner.run(storage.drop_events(None, claimed.event.event_id, False)) == 1
    assert runner.run(storage.drop_events(None, None, True)) == 1
    assert runner.run(storage.outbox_depth()) == (0, 0)


def outbox_rows(storage: Storage) -> int:
    """The event rows stored, counted with the test's own connection."""
    count = "SELECT count(*) FROM event_outbox"
    if isinstance(storage, SqliteStorage):
        with sqlite_file(storage.path) as db:
            (rows,) = db.execute(count).fetchone()
        db.close()
        return int(rows)
    assert isinstance(storage, PostgresStorage)
    with psycopg.connect(storage.url, autocommit=True) as conn:
        row = conn.execute(count).fetchone()
    assert row is not None
    return int(row[0])


def test_without_a_target_no_event_is_written(storage: Storage, runner: asyncio.Runner) -> None:
    """With no --amqp-url and no --webhook (no target registered) purges, batches of purges,
    receipts and expiry write no event rows that nothing would ever deliver; once a target is
    registered, the next purge is an event again."""
    runner.run(storage.remove_event_targets(["amqp", "webhook:http://x/"]))

    async def purges() -> None:
        await asyncio.gather(
            *(storage.purge(purge("p/w", f"c{i}"), b"{}", Provenance("x")) for i in range(4))
        )

    runner.run(purges())
    receipt = CacheReceipt("c0", NOW, 1, 10, None, 0, 0)
    runner.run(storage.report_worker_sync(WorkerReport("p/w", "g", "w1", (receipt,)), NOW + 5))
    assert runner.run(storage.expire(NOW + 2000)) == 4
    assert outbox_rows(storage) == 0
    runner.run(storage.add_event_targets(["amqp"]))
    runner.run(storage.purge(purge("p/w", "again"), b"{}", Provenance("x")))
    assert outbox_rows(storage) == 1
    assert runner.run(storage.outbox_depth()) == (1, 0)


def second_process(storage: Storage) -> Storage:
    """Another serving process's storage on the same database."""
    if isinstance(storage, SqliteStorage):
        return SqliteStorage(storage.path)
    assert isinstance(storage, PostgresStorage)
    return PostgresStorage(storage.url)


def test_a_target_registered_by_another_process_gets_this_ones_purges(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """A process that has seen no event target writes its purges without events; once
    another process (a replica configured with --amqp-url) registers one, this process's
    very next purges (one alone, then a batch) come with their purge.created events."""
    runner.run(storage.remove_event_targets(["amqp", "webhook:http://x/"]))
    runner.run(storage.purge(purge("p/w", "before"), b"{}", Provenance("x")))
    assert outbox_rows(storage) == 0
    other = second_process(storage)
    try:
        runner.run(other.add_event_targets(["amqp"]))
    finally:
        runner.run(other.close())

    async def purges() -> None:
        await asyncio.gather(
            *(storage.purge(purge("p/w", f"c{i}"), b"{}", Provenance("x")) for i in range(4))
        )

    runner.run(storage.purge(purge("p/w", "after"), b"{}", Provenance("x")))
    runner.run(purges())
    claimed = runner.run(storage.claim_events("amqp", NOW + 1, 60_000, 100))
    assert sorted(c.event.cache_name for c in claimed) == ["after", "c0", "c1", "c2", "c3"]
    assert runner.run(storage.purge_history(HistoryFilter(), None, 100)).total == 6


def invoke(storage: Storage, *args: str) -> Result:
    """`purgecache events --db <the storage's database> ARGS`."""
    if isinstance(storage, SqliteStorage):
        url = f"sqlite:///{storage.path}"
    else:
        assert isinstance(storage, PostgresStorage)
        url = storage.url
    return CliRunner().invoke(main, ["events", "--db", url, *args])


def events(storage: Storage, *args: str) -> Result:
    """`invoke`, asserted to succeed."""
    result = invoke(storage, *args)
    assert result.exit_code == 0, result.output
    return result


def test_events_lists_and_drop_forgets_failed_then_pending_deliveries(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """`events` lists each delivery not made with its state; `events drop` forgets the failed
    ones only, `--pending` (with `--target`) the pending ones too."""
    runner.run(storage.purge(purge("p/w", "a"), b"{}", Provenance("x")))
    runner.run(storage.purge(purge("p/w", "b"), b"{}", Provenance("x")))
    claimed = runner.run(storage.claim_events("amqp", NOW + 1, 1000, 1))
    runner.run(storage.event_failed("amqp", claimed[0].seq, 3, NOW + 2, NOW + 1, "refused"))
    listed = events(storage).output.splitlines()
    assert [line.split()[0] for line in listed] == [
        "STATE",
        "failed",
        "pending",
        "pending",
        "pending",
    ]
    assert "refused" in listed[1] and "p/w:a" in listed[1]
    assert events(storage, "drop").output == "1 delivery dropped\n"
    assert runner.run(storage.outbox_depth()) == (3, 0)
    assert events(storage, "drop", "--target", "amqp", "--pending").output == "1 delivery dropped\n"
    assert events(storage, "drop", "--pending").output == "2 deliveries dropped\n"
    assert events(storage).output == "no pending or failed event deliveries\n"


def test_targets_stay_registered_until_the_operator_removes_them(
    storage: Storage, runner: asyncio.Runner
) -> None:
    """Registering only adds (another process's targets stay); `events targets` lists them and
    `--remove` unregisters one and drops its deliveries not made, so that the next event goes
    to the others only; naming a target that is not registered changes nothing."""
    runner.run(storage.add_event_targets(["webhook:http://y/"]))
    assert events(storage, "targets").output.split() == [
        "amqp",
        "webhook:http://x/",
        "webhook:http://y/",
    ]
    runner.run(storage.purge(purge("p/w", "a"), b"{}", Provenance("x")))
    removed = events(storage, "targets", "--remove", "webhook:http://x/")
    assert removed.output == "removed webhook:http://x/; 1 delivery not made dropped\n"
    unknown = invoke(storage, "targets", "--remove", "z")
    assert unknown.exit_code == 2 and "not registered: z" in unknown.output
    runner.run(storage.purge(purge("p/w", "b"), b"{}", Provenance("x")))
    deliveries = runner.run(storage.event_deliveries(10))
    assert sorted((d.cache_name, d.target) for d in deliveries) == [
        ("a", "amqp"),
        ("a", "webhook:http://y/"),
        ("b", "amqp"),
        ("b", "webhook:http://y/"),
    ]

"""The dispatcher's bookkeeping on a real SQLite outbox with a fake sink and clock: delivered
events leave the outbox; a failure is retried after a jittered, growing backoff (the rest of
the batch waits with it, no attempt counted); a delivery still failing 24 h after its event is
marked failed, listed by `purgecache events` and brought back by `events retry`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from purgecache.cli import main
from purgecache.events.dispatcher import GIVE_UP_MS, Dispatcher, Timing
from purgecache.events.model import OutboxEvent, retry_delay_ms
from purgecache.events.sinks import DeliveryFailed
from purgecache.model import Provenance, PurgeRequest
from purgecache.storage import SqliteStorage

NOW = 1_900_000_000_000


class FakeSink:
    """Records deliveries; fails while `down`."""

    target = "webhook:http://fake/"

    def __init__(self) -> None:
        self.down = False
        self.delivered: list[str] = []

    async def deliver(self, event: OutboxEvent) -> None:
        if self.down:
            raise DeliveryFailed("webhook: HTTP 503")
        self.delivered.append(event.event_id)

    async def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as loop:
        yield loop


@pytest.fixture
def storage(tmp_path: Path, runner: asyncio.Runner) -> Iterator[SqliteStorage]:
    store = SqliteStorage(tmp_path / "purgecache.db")
    runner.run(store.upgrade())
    runner.run(store.add_event_targets([FakeSink.target]))
    yield store
    runner.run(store.close())


def purges(storage: SqliteStorage, runner: asyncio.Runner, count: int) -> None:
    for index in range(count):
        request = PurgeRequest("p/w", f"c{index}", NOW, NOW + 1000)
        runner.run(storage.purge(request, b"{}", Provenance("purgeCache")))


def test_backoff_grows_with_jitter_up_to_the_cap() -> None:
    """Each delay lies between half and all of min(cap, 1s·2^(attempts-1))."""
    for attempts, ceiling in ((1, 1000), (2, 2000), (5, 16_000), (40, 60_000)):
        delays = {retry_delay_ms(attempts, 60_000) for _ in range(50)}
        assert all(ceiling // 2 <= delay <= ceiling for delay in delays)
        assert len(delays) > 1


def test_failures_back_off_then_give_up_after_a_day(
    storage: SqliteStorage, runner: asyncio.Runner, tmp_path: Path
) -> None:
    """A failing target: the first event's attempt counts, the rest wait with it; nothing is
    retried before its time; past 24 h the delivery is failed, `events` shows it, `events
    retry` makes it due and it is delivered."""
    purges(storage, runner, 3)
    sink, clock = FakeSink(), Clock()
    dispatcher = Dispatcher(storage, [sink], clock, Timing(retry_cap_ms=60_000))
    sink.down = True
    clock.now += 1
    assert runner.run(dispatcher.deliver_due(sink)) is False
    listed = runner.run(storage.event_deliveries(10))
    assert sorted(d.attempts for d in listed) == [0, 0, 1]
    assert runner.run(dispatcher.deliver_due(sink)) is False  # nothing due yet
    assert runner.run(storage.event_deliveries(10)) == listed
    clock.now += GIVE_UP_MS
    for _ in range(3):  # each round gives up on one; the others wait for the next round
        runner.run(dispatcher.deliver_due(sink))
        clock.now += 60_000
    assert runner.run(storage.outbox_depth()) == (0, 3)
    database = ["--db", f"sqlite:///{tmp_path / 'purgecache.db'}"]
    shown = CliRunner().invoke(main, ["events", *database])
    assert shown.exit_code == 0, shown.output
    assert shown.output.count("failed") == 3 and "HTTP 503" in shown.output
    retried = CliRunner().invoke(main, ["events", *database, "retry"])
    assert "3 failed deliveries to retry" in retried.output
    sink.down = False
    assert runner.run(dispatcher.deliver_due(sink)) is True
    assert len(sink.delivered) == 3
    assert runner.run(storage.outbox_depth()) == (0, 0)
    empty = CliRunner().invoke(main, ["events", *database])
    assert "no pending or failed event deliveries" in empty.output

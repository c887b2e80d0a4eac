"""The dispatcher's bookkeeping on a real SQLite outbox with a fake sink and clock: delivered
events leave the outbox; a failure is retried after a jittered, growing backoff (the rest of
the batch waits with it, no attempt counted); a delivery still failing 24 h after its event is
marked failed, listed by `purgecache events` and brought back by `events retry`. With the real
AMQP sink and RabbitMQ: a publish the broker never confirms, or nacks, is not a delivery."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from purgecache.cli import main
from purgecache.events import sinks
from purgecache.events.dispatcher import GIVE_UP_MS, Dispatcher, Timing
from purgecache.events.model import OutboxEvent, retry_delay_ms
from purgecache.events.sinks import AMQP_TARGET, AmqpSink, DeliveryFailed
from purgecache.model import Provenance, PurgeRequest
from purgecache.storage import SqliteStorage

from support.event_receivers import rabbit_queue
from support.tcp_proxy import TcpProxy

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


def amqp_dispatcher(
    storage: SqliteStorage, runner: asyncio.Runner, exchange: str, port: int = 5672
) -> tuple[Dispatcher, AmqpSink, Clock]:
    """The real AMQP sink (publisher confirms) on `exchange` of the broker at `port`, its
    target registered before any purge."""
    runner.run(storage.add_event_targets([AMQP_TARGET]))
    sink, clock = AmqpSink(f"amqp://guest:guest@127.0.0.1:{port}/", exchange), Clock()
    return Dispatcher(storage, [sink], clock), sink, clock


def amqp_pending(storage: SqliteStorage, runner: asyncio.Runner) -> list[tuple[int, str]]:
    """(attempts, last error) of each AMQP delivery still in the outbox."""
    listed = runner.run(storage.event_deliveries(10))
    return [(d.attempts, d.last_error or "") for d in listed if d.target == AMQP_TARGET]


def test_a_publish_the_broker_never_confirms_is_retried_until_confirmed(
    storage: SqliteStorage, runner: asyncio.Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker (behind a proxy) stops answering after the publish: no Basic.Ack within the
    sink's time-out, so the delivery stays in the outbox with its attempt counted; once the
    broker answers again, the retry after the backoff is confirmed and the event arrives."""
    monkeypatch.setattr(sinks, "TIMEOUT", 0.5)
    queue, proxy = rabbit_queue(), TcpProxy(("127.0.0.1", 5672))
    dispatcher, sink, clock = amqp_dispatcher(storage, runner, queue.exchange, proxy.port)
    try:
        purges(storage, runner, 1)  # the connection is open before the broker stalls
        assert runner.run(dispatcher.deliver_due(sink)) is True
        proxy.stall()
        request = PurgeRequest("p/w", "unconfirmed", NOW, NOW + 1000)
        runner.run(storage.purge(request, b"{}", Provenance("purgeCache")))
        assert runner.run(dispatcher.deliver_due(sink)) is False
        assert proxy.held_bytes > 0, "the publish never left"
        assert amqp_pending(storage, runner) == [(1, "AMQP: TimeoutError: ")]
        proxy.flow()
        clock.now += 60_000  # past the backoff
        assert runner.run(dispatcher.deliver_due(sink)) is True
        assert amqp_pending(storage, runner) == []
        created = [m.body["cacheName"] for m in queue.drain()]
        assert created[0] == "c0" and "unconfirmed" in created[1:]
    finally:
        runner.run(sink.close())
        proxy.close()
        queue.close()


def test_a_publish_the_broker_nacks_is_retried_until_acked(
    storage: SqliteStorage, runner: asyncio.Runner
) -> None:
    """RabbitMQ nacks the publish (the only bound queue is full: `x-max-length` 0 with
    `reject-publish`): the delivery stays, its attempt counted; once that queue is unbound and
    another bound, the retry is acked and the event arrives there exactly once."""
    full = {"x-max-length": 0, "x-overflow": "reject-publish"}
    rejecting = rabbit_queue(arguments=full)
    dispatcher, sink, clock = amqp_dispatcher(storage, runner, rejecting.exchange)
    try:
        purges(storage, runner, 1)
        assert runner.run(dispatcher.deliver_due(sink)) is False
        ((attempts, error),) = amqp_pending(storage, runner)
        assert attempts == 1 and "Basic.Nack" in error
        rejecting.unbind()
        arriving = rabbit_queue(rejecting.exchange)
        clock.now += 60_000  # past the backoff
        assert runner.run(dispatcher.deliver_due(sink)) is True
        assert amqp_pending(storage, runner) == []
        assert [m.body["cacheName"] for m in arriving.drain()] == ["c0"]
        arriving.close()
    finally:
        runner.run(sink.close())
        rejecting.close()

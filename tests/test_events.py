"""Events end to end (issue 16, item 6): a real `purgecache serve` on SQLite and PostgreSQL
publishes `purge.created` and `purge.applied` to a real RabbitMQ (through a TCP proxy that can
cut it off) and POSTs them, signed, to a webhook receiver on loopback. None is lost while the
broker or the receiver is away, nor when the service is killed with -9 before delivering or
in the middle of a delivery (duplicates are counted)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from purgecache.events.model import KINDS

from conftest import ADMIN, LiveServer, db_args, start_server
from hawk_signing import HawkAuth
from support.event_receivers import RabbitQueue, WebhookReceiver, rabbit_queue
from support.tcp_proxy import TcpProxy

SECRET = b"webhook-secret-0123456789"
BACKENDS = ["sqlite", "postgres"]
PENDING = 'purgecache_event_outbox_depth{state="pending"}'


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll `check` until it holds (bounded)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def rabbit() -> Iterator[RabbitQueue]:
    """A queue bound to this test's own exchange on the shared broker."""
    queue = rabbit_queue()
    yield queue
    queue.close()


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    """The broker behind a proxy the test can cut off."""
    cut_off = TcpProxy(("127.0.0.1", 5672))
    yield cut_off
    cut_off.close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver(SECRET)
    yield hook
    hook.close()


@pytest.fixture(params=BACKENDS)
def serve(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    rabbit: RabbitQueue,
    proxy: TcpProxy,
    receiver: WebhookReceiver,
) -> Iterator[Callable[..., LiveServer]]:
    """Start (and restart) a server on one database, delivering to the proxied broker and
    the receiver, with an event lease of `lease` (2 s: a crash's events go again soon);
    every one still running is stopped afterwards."""
    secret = tmp_path / "webhook.secret"
    secret.write_bytes(SECRET + b"\n")
    database = db_args(request.param)
    servers: list[LiveServer] = []

    def start(lease: str = "2s") -> LiveServer:
        events = [
            f"--amqp-url=amqp://guest:guest@127.0.0.1:{proxy.port}/",
            f"--amqp-exchange={rabbit.exchange}",
            f"--webhook={receiver.url}",
            f"--webhook-secret-file={secret}",
            "--event-retry-max=300ms",
            f"--event-lease={lease}",
        ]
        servers.append(start_server(tmp_path / "data", *database, *events))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def purge(live: LiveServer, cache: str) -> None:
    answer = httpx.post(
        f"{live.api}/purge-cache/ev-p%2Flinux",
        json={"cacheName": cache},
        auth=HawkAuth(*ADMIN),
        timeout=10,
    )
    assert answer.status_code == 204, answer.text


def report(live: LiveServer, cache: str) -> None:
    body = {
        "workerGroup": "g",
        "workerId": "w1",
        "caches": [
            {
                "cacheName": cache,
                "honouredBefore": "2026-05-01T10:00:00.000Z",
                "instancesDeleted": 1,
                "bytesFreed": 10,
                "failures": 0,
                "inUse": 0,
            }
        ],
    }
    answer = httpx.post(
        f"{live.api}/ext/report/ev-p%2Flinux", json=body, auth=HawkAuth(*ADMIN), timeout=10
    )
    assert answer.status_code == 204, answer.text


def test_events_reach_a_rabbitmq_queue_and_a_webhook(
    serve: Callable[..., LiveServer], rabbit: RabbitQueue, receiver: WebhookReceiver
) -> None:
    """A purge is `purge.created` and a receipt `purge.applied`, on the topic exchange (routing
    key by pool halves and cache, `_` for a cache name that is not a word; persistent;
    message id = event id) and at the webhook, correctly signed, with the same ids."""
    live = serve()
    purge(live, "build-cache")
    purge(live, "odd.name")
    report(live, "build-cache")
    wait_for(lambda: len(rabbit.ids()) == 3 and len(receiver.ids()) == 3)
    keys = sorted(m.routing_key for m in rabbit.messages)
    assert keys == [
        "purge.applied.ev-p.linux.build-cache",
        "purge.created.ev-p.linux._",
        "purge.created.ev-p.linux.build-cache",
    ]
    assert all(m.delivery_mode == 2 and m.message_id == m.body["eventId"] for m in rabbit.messages)
    assert sorted(rabbit.ids()) == sorted(receiver.ids())
    assert receiver.bad_signatures == 0


def test_no_event_is_lost_while_the_broker_and_receiver_are_away(
    serve: Callable[..., LiveServer],
    rabbit: RabbitQueue,
    receiver: WebhookReceiver,
    proxy: TcpProxy,
) -> None:
    """With the broker cut off and the receiver answering 503, purges are still accepted;
    their events wait in the outbox (the metrics show them) and all arrive once both are
    back."""
    live = serve()
    purge(live, "warm-up")
    wait_for(lambda: len(rabbit.ids()) == 1 and len(receiver.ids()) == 1)
    # The broker's confirm comes back through the proxy after the queue has the message.
    wait_for(lambda: f"{PENDING} 0.0" in httpx.get(f"{live.root_url}/metrics", timeout=10).text)
    proxy.cut()
    receiver.status = 503
    for index in range(10):
        purge(live, f"c{index}")
    time.sleep(1.0)
    metrics = httpx.get(f"{live.root_url}/metrics", timeout=10).text
    assert f"{PENDING} 20.0" in metrics
    assert 'purgecache_event_deliveries_total{result="failed",target="webhook"}' in metrics
    proxy.restore()
    receiver.status = 204
    wait_for(lambda: len(set(rabbit.ids())) == 11 and len(set(receiver.ids())) == 11)


def test_events_survive_a_kill_9_before_delivery(
    serve: Callable[..., LiveServer],
    rabbit: RabbitQueue,
    receiver: WebhookReceiver,
    proxy: TcpProxy,
) -> None:
    """Events accepted while nothing could be delivered are delivered by the next service
    on the same database after the first was killed with -9 (at least once: duplicates are
    counted, not lost)."""
    first = serve()
    proxy.cut()
    receiver.status = 503
    for index in range(5):
        purge(first, f"k{index}")
    first.kill_all()
    proxy.restore()
    receiver.status = 204
    serve()
    wait_for(lambda: len(set(rabbit.ids())) == 5 and len(set(receiver.ids())) == 5)
    duplicates = len(rabbit.ids()) - 5 + len(receiver.ids()) - 5
    assert duplicates >= 0


def test_an_event_in_flight_when_the_service_is_killed_is_delivered_after_its_lease(
    serve: Callable[..., LiveServer],
    rabbit: RabbitQueue,
    receiver: WebhookReceiver,
    proxy: TcpProxy,
) -> None:
    """kill -9 while an event is being delivered to both targets (the broker stalled after
    the publish reached the proxy, the receiver holding the POST open): the next service on
    the database delivers it again once the lease (2 s) has run out. At least once: the
    broker and the receiver each get it, and each copy the dead process sent counts as a
    duplicate."""
    first = serve()
    purge(first, "warm-up")  # the broker connection is open before it stalls
    wait_for(lambda: len(rabbit.ids()) == 1 and len(receiver.ids()) == 1)
    proxy.stall()
    receiver.holding = True
    purge(first, "in-flight")
    wait_for(lambda: proxy.held_bytes > 0 and len(receiver.held) == 1)
    leased_at = time.monotonic()
    first.kill_all()
    proxy.flow()  # the publish the dead process sent reaches the broker after all
    receiver.release()
    serve()
    wait_for(lambda: len(receiver.ids()) == 2)
    assert time.monotonic() - leased_at >= 2.0 - 0.3, "delivered again before the lease ran out"
    wait_for(lambda: len(rabbit.ids()) >= 2)
    time.sleep(0.5)  # a further copy would arrive by now
    event_id = receiver.held[0]["eventId"]
    assert receiver.ids()[1] == event_id and event_id in rabbit.ids()
    duplicates = (rabbit.ids().count(event_id) - 1, len(receiver.held))
    print(f"duplicates after kill -9 mid-delivery (amqp, webhook): {duplicates}")
    assert rabbit.ids().count(event_id) >= 1 and receiver.ids().count(event_id) == 1


def test_two_replicas_deliver_each_event_once(
    serve: Callable[..., LiveServer], rabbit: RabbitQueue, receiver: WebhookReceiver
) -> None:
    """Two services on one database, both delivering: every event arrives, and the leases
    give each to one replica (duplicates counted: none without a crash or a delivery slower
    than the lease, which is long here so that a stalled disk cannot make one)."""
    replicas = [serve(lease="60s"), serve(lease="60s")]
    for index in range(20):
        purge(replicas[index % 2], f"r{index}")
    wait_for(lambda: len(set(rabbit.ids())) == 20 and len(set(receiver.ids())) == 20)
    time.sleep(0.5)  # a duplicate would arrive by now
    duplicates = (len(rabbit.ids()) - 20, len(receiver.ids()) - 20)
    print(f"duplicates across two replicas (amqp, webhook): {duplicates}")
    assert duplicates == (0, 0)


def test_the_events_table_of_the_docs_lists_every_kind() -> None:
    """docs/events.md's table names exactly the kinds of event the service sends."""
    docs = (Path(__file__).parent.parent / "docs" / "events.md").read_text()
    (table,) = [block for block in docs.split("\n\n") if block.startswith("| event |")]
    documented = re.findall(r"^\| `(purge\.[a-z]+)` \|", table, flags=re.MULTILINE)
    assert documented == list(KINDS)


def test_each_pair_of_a_selector_purge_is_a_created_event_naming_the_selector(
    serve: Callable[..., LiveServer], rabbit: RabbitQueue, receiver: WebhookReceiver
) -> None:
    """Applying a selector makes one `purge.created` per pair it expanded to, on the broker
    and at the webhook, each naming the selector."""
    live = serve()
    purge(live, "sel-a")
    purge(live, "sel-b")
    wait_for(lambda: len(rabbit.ids()) == 2 and len(receiver.ids()) == 2)
    selector = {"workerPoolPattern": "ev-p/*", "cacheNamePattern": "sel-*"}
    answer = httpx.post(
        f"{live.api}/ext/selector-purge", json=selector, auth=HawkAuth(*ADMIN), timeout=10
    )
    assert answer.status_code == 200, answer.text
    wait_for(lambda: len(rabbit.ids()) == 4 and len(receiver.ids()) == 4)
    for events in ([m.body for m in rabbit.messages], receiver.events):
        made = [(e["cacheName"], e.get("selector")) for e in events[2:]]
        assert sorted(made) == [("sel-a", selector), ("sel-b", selector)]


def test_the_default_exchange_is_declared_and_published_to(tmp_path: Path) -> None:
    """Without --amqp-exchange, events go to the durable topic exchange
    `exchange/purgecache/v1/events` (the service's declaration agrees with a consumer's)."""
    provisioner = f"ev-{uuid.uuid4().hex[:8]}"
    queue = rabbit_queue("exchange/purgecache/v1/events", f"purge.created.{provisioner}.#")
    live = start_server(tmp_path / "data", "--amqp-url=amqp://guest:guest@127.0.0.1:5672/")
    try:
        answer = httpx.post(
            f"{live.api}/purge-cache/{provisioner}%2Flinux",
            json={"cacheName": "c"},
            auth=HawkAuth(*ADMIN),
            timeout=10,
        )
        assert answer.status_code == 204
        wait_for(lambda: len(queue.ids()) == 1)
        assert queue.messages[0].routing_key == f"purge.created.{provisioner}.linux.c"
    finally:
        live.stop()
        queue.close()

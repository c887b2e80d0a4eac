"""PostgreSQL through PgBouncer in transaction pooling mode (deploy/pgbouncer/pgbouncer.ini,
Debian's pgbouncer): two replicas share one database through it, with `--db-listen-url` giving
LISTEN (and migrations) a direct connection. Under concurrent load no statement fails (psycopg
prepares nothing: PgBouncer 1.18 would lose prepared statements between server connections), a
purge on one replica is visible on the other within a second, and a restart of the primary
behind PgBouncer is survived (a private cluster: the shared one is never stopped)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from test_outage import PrivatePostgres

import pg
from conftest import ADMIN, LiveServer
from deployment.pgbouncer import PgBouncer
from hawk_signing import HawkAuth

ServerFactory = Callable[..., LiveServer]
AUTH = HawkAuth(*ADMIN)
POOL = "proj-a%2Flinux"
SERVE = [sys.executable, "-m", "purgecache", "serve", "--port", "0"]


@pytest.fixture
def bouncer() -> Iterator[PgBouncer]:
    """PgBouncer in front of the machine's shared PostgreSQL."""
    pg.require_postgres()
    host_port = pg.ADMIN_URL.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    bouncer = PgBouncer(host, int(port))
    yield bouncer
    bouncer.stop()


def replicas(
    server_factory: ServerFactory, tmp_path: Path, bounced: str, direct: str
) -> tuple[LiveServer, LiveServer]:
    """Two `serve` processes on one database through PgBouncer, answers cached for 300 s
    (so only a notification can make a purge visible on the other one)."""
    args = ("--db", bounced, "--db-listen-url", direct, "--cache-time", "300s")
    first = server_factory(*args, data_dir=tmp_path / "a")
    return first, server_factory(*args, data_dir=tmp_path / "b")


def cache_names(live: LiveServer, pool: str = POOL) -> list[str]:
    answer = httpx.get(f"{live.api}/purge-cache/{pool}", auth=AUTH, timeout=10)
    assert answer.status_code == 200, answer.text
    return [request["cacheName"] for request in answer.json()["requests"]]


def purge(live: LiveServer, cache_name: str, pool: str = POOL) -> int:
    url = f"{live.api}/purge-cache/{pool}"
    return httpx.post(url, json={"cacheName": cache_name}, auth=AUTH, timeout=10).status_code


def seconds_until_visible(live: LiveServer, cache_name: str, limit: float = 5.0) -> float:
    """How long until `live` answers `cache_name` for POOL (polled every 10 ms)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if cache_name in cache_names(live):
            return time.monotonic() - started
        time.sleep(0.01)
    return limit


async def load(servers: tuple[LiveServer, ...], count: int) -> list[int]:
    """`count` purges and reads of uncached pools, 16 at a time, spread over the servers."""
    limit = asyncio.Semaphore(16)

    async def one(client: httpx.AsyncClient, n: int) -> int:
        live = servers[n % len(servers)]
        url = f"{live.api}/purge-cache/load%2Fp{n // 2}"
        async with limit:
            if n % 2:
                answer = await client.get(url, auth=AUTH)
            else:
                answer = await client.post(url, json={"cacheName": f"c{n}"}, auth=AUTH)
        return answer.status_code

    async with httpx.AsyncClient(timeout=30) as client:
        return list(await asyncio.gather(*(one(client, n) for n in range(count))))


def test_replicas_through_pgbouncer_see_purges_within_a_second(
    bouncer: PgBouncer, server_factory: ServerFactory, tmp_path: Path
) -> None:
    """Concurrent purges and reads through transaction pooling all succeed, on several server
    connections; a purge on one replica reaches the other's cache within a second."""
    direct = pg.create_database()
    a, b = replicas(server_factory, tmp_path, bouncer.url(direct.rsplit("/", 1)[1]), direct)
    statuses = asyncio.run(load((a, b), 400))
    assert sorted(set(statuses)) == [200, 204], statuses
    assert cache_names(b) == []  # cached on b from now on
    assert purge(a, "checkouts") == 204
    assert seconds_until_visible(b, "checkouts") < 1.0
    assert purge(b, "objdir") == 204
    assert seconds_until_visible(a, "objdir") < 1.0
    for live in (a, b):
        assert '"storage-error"' not in live.log_text().replace(" ", "")
    database = direct.rsplit("/", 1)[1]
    transactions = [row for row in bouncer.show("STATS") if row[0] == database]
    assert transactions and int(str(transactions[0][1])) > 200  # total_xact_count (reads: 200)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    yield cluster
    cluster.remove()


def test_primary_restart_behind_pgbouncer_is_survived(
    private_postgres: PrivatePostgres, server_factory: ServerFactory, tmp_path: Path
) -> None:
    """The primary stops (immediate) and starts again behind PgBouncer: purges get 503 while
    it is down, work again once it is back without restarting anything, and the replicas'
    notifications resume (a purge on one is again visible on the other within a second)."""
    bouncer = PgBouncer("127.0.0.1", private_postgres.port)
    try:
        a, b = replicas(server_factory, tmp_path, bouncer.url("postgres"), private_postgres.url)
        assert purge(a, "before-restart") == 204
        assert seconds_until_visible(b, "before-restart") < 1.0
        private_postgres.stop()
        assert purge(a, "while-down") == 503
        private_postgres.start()
        deadline = time.monotonic() + 20
        while purge(a, "after-restart") != 204:
            assert time.monotonic() < deadline, a.log_text()[-3000:]
            time.sleep(0.2)
        assert seconds_until_visible(b, "after-restart", limit=10) < 10
        assert purge(a, "settled") == 204
        assert seconds_until_visible(b, "settled") < 1.0
        assert cache_names(a) == ["after-restart", "before-restart", "settled"]
    finally:
        bouncer.stop()


def test_listen_url_needs_postgresql_on_both_sides(tmp_path: Path) -> None:
    """`--db-listen-url` beside an SQLite database is refused at start, in one line."""
    done = subprocess.run(
        [*SERVE, "--data-dir", str(tmp_path), "--db-listen-url", "postgresql://db/pc"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "--db-listen-url needs PostgreSQL URLs in both --db and itself" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_events_are_delivered_through_pgbouncer(
    bouncer: PgBouncer, server_factory: ServerFactory, tmp_path: Path
) -> None:
    """The outbox's leases need no session state: two replicas delivering webhooks through
    transaction pooling deliver every event, each once in this run, with no storage error."""
    from support.event_receivers import WebhookReceiver

    receiver = WebhookReceiver(b"pgbouncer-secret")
    secret = tmp_path / "secret"
    secret.write_bytes(b"pgbouncer-secret")
    direct = pg.create_database()
    bounced = bouncer.url(direct.rsplit("/", 1)[1])
    events = ("--webhook", receiver.url, "--webhook-secret-file", str(secret))
    args = ("--db", bounced, "--db-listen-url", direct, *events)
    servers = [server_factory(*args, data_dir=tmp_path / name) for name in "ab"]
    try:
        assert all(purge(servers[n % 2], f"e{n}") == 204 for n in range(30))
        deadline = time.monotonic() + 20
        while len(set(receiver.ids())) < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(set(receiver.ids())) == 30
        assert receiver.bad_signatures == 0
        for live in servers:
            assert "event-delivery-stalled" not in live.log_text()
    finally:
        receiver.close()


def test_receipts_through_pgbouncer_reach_the_other_replicas_status(
    bouncer: PgBouncer, server_factory: ServerFactory, tmp_path: Path
) -> None:
    """A worker's receipt (reportWorkerSync) accepted by one replica through transaction
    pooling counts as applied in the other replica's purgeStatus within a second."""
    direct = pg.create_database()
    a, b = replicas(server_factory, tmp_path, bouncer.url(direct.rsplit("/", 1)[1]), direct)
    assert purge(a, "checkouts") == 204
    before = httpx.get(f"{b.api}/purge-cache/{POOL}", auth=AUTH, timeout=10).json()
    (entry,) = [r for r in before["requests"] if r["cacheName"] == "checkouts"]
    receipt = {"cacheName": "checkouts", "honouredBefore": entry["before"]}
    receipt |= {"instancesDeleted": 1, "bytesFreed": 10, "failures": 0, "inUse": 0}
    body = {"workerGroup": "local", "workerId": "w1", "caches": [receipt]}
    url = f"{a.api}/ext/report/{POOL}"
    assert httpx.post(url, json=body, auth=AUTH, timeout=10).status_code == 204
    started = time.monotonic()
    while True:
        answer = httpx.get(f"{b.api}/ext/status/{POOL}?cacheName=checkouts", auth=AUTH, timeout=10)
        assert answer.status_code == 200, answer.text
        (status,) = answer.json()["purges"]
        if status["applied"] == 1 or time.monotonic() - started > 5:
            break
        time.sleep(0.01)
    assert status["applied"] == 1 and status["activeWorkers"] == 1, status
    assert time.monotonic() - started < 1.0

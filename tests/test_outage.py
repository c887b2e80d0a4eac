"""The database goes away under a running server and comes back: the service degrades to 503s
(with Retry-After), keeps serving fresh cached answers, reports it in `__heartbeat__`, never
crashes, loses no acknowledged purge, and recovers without a restart.

Uses a PostgreSQL instance of its own (initdb in a temporary directory, run as the `postgres`
user) so the machine's shared server is never stopped.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from conftest import ADMIN, LiveServer, free_port
from hawk_signing import HawkAuth

ServerFactory = Callable[..., LiveServer]


def _pg_bin() -> Path | None:
    for version in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (version / "initdb").exists():
            return version
    return None


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on its own port."""

    def __init__(self) -> None:
        bin_dir = _pg_bin()
        if bin_dir is None or shutil.which("runuser") is None:
            pytest.skip("PostgreSQL server binaries or runuser not available")
        self.bin = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="purgecache-pg-"))
        self.port = free_port()
        shutil.chown(self.dir, "postgres", "postgres")
        self._pg("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres")
        self.start()

    def _pg(self, tool: str, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(self.bin / tool), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        self._pg(
            "pg_ctl",
            "-D",
            str(self.dir / "data"),
            "-o",
            options,
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._pg("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.dir / "data"),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    yield cluster
    cluster.remove()


POOL_TIMEOUT_S = 3.0  # PostgresStorage's: a request that waited for a connection takes this
FAST_S = 0.5  # "at once": well inside the pool timeout, so no connection was waited for


def _timed(send: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = send()
    return answer, time.monotonic() - started


def _signed_bytes(method: str, url: str, body: object = None) -> bytes:
    """A Hawk-signed HTTP/1.1 request as bytes, to send again and again (no nonce is kept)."""
    request = httpx.Request(method, url, json=body)
    next(HawkAuth(*ADMIN).auth_flow(request))
    lines = [f"{method} {request.url.raw_path.decode()} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in request.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + request.content


async def _load(live: LiveServer, seconds: float, connections: int = 30) -> list[float]:
    """`connections` keep-alive connections sending purges, listings, heartbeats and reads of
    uncached pools as fast as they are answered (pre-signed, so that the client's own work
    stays small); every latency, each answer asserted to be a 503 with Retry-After."""
    requests = (
        _signed_bytes("POST", f"{live.api}/purge-cache/load%2Fp", {"cacheName": "c"}),
        _signed_bytes("GET", f"{live.api}/purge-cache/load%2Fp"),
        _signed_bytes("GET", f"{live.api}/purge-cache/list"),
        _signed_bytes("GET", f"{live.api}/__heartbeat__"),
    )
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def client(request: bytes) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
        while time.monotonic() < deadline:
            started = time.monotonic()
            writer.write(request)
            head = (await reader.readuntil(b"\r\n\r\n")).lower()
            await reader.readexactly(int(head.split(b"content-length: ")[1].split(b"\r")[0]))
            latencies.append(time.monotonic() - started)
            assert head.startswith(b"http/1.1 503") and b"retry-after: " in head, head
        writer.close()

    await asyncio.gather(*(client(requests[n % 4]) for n in range(connections)))
    return sorted(latencies)


def test_database_outage_fails_fast_serves_stale_and_recovers(
    server_factory: ServerFactory, private_postgres: PrivatePostgres
) -> None:
    """With PostgreSQL stopped, the first failure opens the circuit and every endpoint that
    needs the database answers 503 with Retry-After at once (no pool wait), alone and under 30
    connections; a pool's last good answer is served byte for byte for --stale-if-error past
    --cache-time; the service recovers without a restart and the refused purge left nothing."""
    live = server_factory(
        "--db", private_postgres.url, "--cache-time", "1s", "--stale-if-error", "4s"
    )
    auth = HawkAuth(*ADMIN)
    pool_url = f"{live.api}/purge-cache/outage%2Fpool"
    with httpx.Client(auth=auth, timeout=15) as client:
        assert client.post(pool_url, json={"cacheName": "before-outage"}).status_code == 204
        good = client.get(pool_url)
        fetched = time.monotonic()
        assert [e["cacheName"] for e in good.json()["requests"]] == ["before-outage"]
        private_postgres.stop()

        refused, took = _timed(lambda: client.post(pool_url, json={"cacheName": "during"}))
        assert refused.status_code == 503, refused.text
        assert refused.json()["code"] == "ServiceUnavailable"
        assert int(refused.headers["retry-after"]) > 0
        assert took < POOL_TIMEOUT_S, "the first failure must not wait for the pool twice"
        print(f"first 503 (the failure that opens the circuit): {took * 1000:.0f} ms")
        for name, send in {
            "purgeCache": lambda: client.post(pool_url, json={"cacheName": "during"}),
            "allPurgeRequests": lambda: client.get(f"{live.api}/purge-cache/list"),
            "purgeRequests (never read)": lambda: client.get(f"{live.api}/purge-cache/a%2Fb"),
            "heartbeat": lambda: client.get(f"{live.api}/__heartbeat__"),
            "root heartbeat": lambda: client.get(f"{live.root_url}/__heartbeat__"),
        }.items():
            answer, took = _timed(send)
            assert answer.status_code == 503 and "retry-after" in answer.headers, name
            assert took < FAST_S, f"{name} waited {took:.3f} s with the circuit open"
            print(f"503 alone, {name}: {took * 1000:.1f} ms")
        assert client.get(f"{live.root_url}/__heartbeat__").json() == {
            "checks": {"database": "unavailable"}
        }
        metrics, took = _timed(lambda: client.get(f"{live.root_url}/metrics"))
        assert metrics.status_code == 200 and took < FAST_S
        assert client.get(f"{live.api}/ping").status_code == 200

        time.sleep(max(0.0, fetched + 1.1 - time.monotonic()))  # the answer is stale now
        stale, took = _timed(lambda: client.get(pool_url))
        assert stale.status_code == 200 and took < FAST_S
        assert stale.content == good.content  # byte for byte

        latencies = asyncio.run(_load(live, seconds=1.5))
        p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
        print(
            f"503 under 30 connections: {len(latencies)} answers, p50 {p50 * 1000:.1f} ms, "
            f"p99 {p99 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms"
        )
        assert latencies[-1] < 1.0

        time.sleep(max(0.0, fetched + 1.0 + 4.1 - time.monotonic()))  # stale-if-error is over
        assert client.get(pool_url).status_code == 503

        private_postgres.start()
        started = time.monotonic()
        while client.get(f"{live.api}/__heartbeat__").status_code != 200:
            assert time.monotonic() < started + 20, "service did not recover"
            time.sleep(0.05)
        print(f"recovered {time.monotonic() - started:.2f} s after PostgreSQL started")
        assert client.post(pool_url, json={"cacheName": "after-outage"}).status_code == 204
        names = [e["cacheName"] for e in client.get(pool_url).json()["requests"]]
        assert names == ["after-outage", "before-outage"]  # the refused writes left nothing
    assert live.process.poll() is None
    events = [json.loads(x) for x in live.log_text().splitlines() if x.startswith("{")]
    assert [e["event"] for e in events if "circuit" in e.get("event", "")] == [
        "circuit-opened",
        "circuit-closed",
    ]
    assert any(e.get("event") == "storage-error" for e in events)  # one JSON object per line
    assert not any(e.get("event") == "heartbeat-failed" for e in events)  # refusals: no line
    assert not any(e.get("status", 0) >= 500 and e["status"] != 503 for e in events)

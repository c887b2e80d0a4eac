"""The database goes away under a running server and comes back: the service degrades to 503s
(with Retry-After), keeps serving fresh cached answers, reports it in `__heartbeat__`, never
crashes, loses no acknowledged purge, and recovers without a restart.

Uses a PostgreSQL instance of its own (initdb in a temporary directory, run as the `postgres`
user) so the machine's shared server is never stopped.
"""

from __future__ import annotations

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


def test_database_outage_and_recovery(
    server_factory: ServerFactory, private_postgres: PrivatePostgres
) -> None:
    """503 with Retry-After while down, cached answers while fresh, recovery without restart."""
    live = server_factory("--db", private_postgres.url, "--cache-time", "5s")
    auth = HawkAuth(*ADMIN)
    pool_url = f"{live.api}/purge-cache/outage%2Fpool"
    with httpx.Client(auth=auth, timeout=15) as client:
        assert client.post(pool_url, json={"cacheName": "before-outage"}).status_code == 204
        assert [e["cacheName"] for e in client.get(pool_url).json()["requests"]] == [
            "before-outage"
        ]
        private_postgres.stop()

        cached = client.get(pool_url)  # fresh in the per-pool cache: still served
        assert cached.status_code == 200
        assert cached.json()["requests"][0]["cacheName"] == "before-outage"

        started = time.monotonic()
        refused = client.post(pool_url, json={"cacheName": "during-outage"})
        assert refused.status_code == 503, refused.text
        assert refused.json()["code"] == "ServiceUnavailable"
        assert int(refused.headers["retry-after"]) > 0
        took = time.monotonic() - started
        assert took < 5, "a write to a dead database must fail fast"
        print(f"write refused after {took:.3f} s")

        listing = client.get(f"{live.api}/purge-cache/list")
        assert listing.status_code == 503
        heartbeat = client.get(f"{live.api}/__heartbeat__")
        assert heartbeat.status_code == 503
        assert heartbeat.json() == {"checks": {"database": "unavailable"}}
        assert client.get(f"{live.api}/ping").status_code == 200

        time.sleep(5.2)  # the cached answer is no longer fresh
        assert client.get(pool_url).status_code == 503

        private_postgres.start()
        deadline = time.monotonic() + 20
        while client.get(f"{live.api}/__heartbeat__").status_code != 200:
            assert time.monotonic() < deadline, "service did not recover"
            time.sleep(0.2)
        assert client.post(pool_url, json={"cacheName": "after-outage"}).status_code == 204
        names = [e["cacheName"] for e in client.get(pool_url).json()["requests"]]
        assert names == ["after-outage", "before-outage"]  # the refused write left nothing
    assert live.process.poll() is None
    events = [json.loads(x) for x in live.log_text().splitlines() if x.startswith("{")]
    assert any(e.get("event") == "storage-error" for e in events)  # one JSON object per line
    assert any(e.get("event") == "heartbeat-failed" for e in events)

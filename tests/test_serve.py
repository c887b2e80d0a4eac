"""`purgecache serve` and `purgecache expire` as an operator runs them: start-up, restarts,
crashes, signals, retention, logs.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from purgecache.model import PurgeRequest

import pg
from conftest import ADMIN, CLIENTS_TOML, LiveServer, free_port, wait_until_serving
from hawk_signing import HawkAuth
from support.commands import json_records, run_cli, startup_failure
from support.sqlite_files import sqlite_file

ServerFactory = Callable[..., LiveServer]


def purge(server: LiveServer, pool: str, cache: str) -> httpx.Response:
    with httpx.Client(auth=HawkAuth(*ADMIN), timeout=10) as client:
        return client.post(f"{server.api}/purge-cache/{pool}", json={"cacheName": cache})


def listed(server: LiveServer, pool: str) -> list[str]:
    with httpx.Client(auth=HawkAuth(*ADMIN), timeout=10) as client:
        body = client.get(f"{server.api}/purge-cache/{pool}").json()
    return [entry["cacheName"] for entry in body["requests"]]


def stored_names(db: Path) -> set[str]:
    with sqlite_file(db) as conn:
        return {row[0] for row in conn.execute("SELECT cache_name FROM cache_purges")}


def test_purges_survive_a_restart(server_factory: ServerFactory, tmp_path: Path) -> None:
    """A purge stored before a clean restart is served after it."""
    first = server_factory(data_dir=tmp_path / "d")
    assert purge(first, "keep/pool", "c").status_code == 204
    assert first.stop() == 0
    second = server_factory(data_dir=tmp_path / "d")
    assert listed(second, "keep/pool") == ["c"]


def test_sigterm_stops_cleanly_within_ten_seconds(server_factory: ServerFactory) -> None:
    """SIGTERM ends the process tree with exit code 0 in under 10 s."""
    live = server_factory()
    started = time.monotonic()
    assert live.stop(signal.SIGTERM, timeout=10) == 0
    assert time.monotonic() - started < 10


def stored_names_of(live: LiveServer) -> set[str]:
    """Cache names stored in a server's database, whichever the backend."""
    if live.backend == "sqlite":
        return stored_names(live.db_path)
    import psycopg

    url = live.args[live.args.index("--db") + 1]
    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute("SELECT cache_name FROM cache_purges")}


@pytest.mark.slow
def test_every_acknowledged_purge_survives_kill_9(backend_server_factory: ServerFactory) -> None:
    """Killing server and workers with SIGKILL under write load loses no 204-acknowledged purge."""
    live = backend_server_factory()
    acknowledged: list[str] = []
    stop = threading.Event()

    def writer(worker: int) -> None:
        with httpx.Client(auth=HawkAuth(*ADMIN), timeout=5) as client:
            for index in range(100_000):
                if stop.is_set():
                    return
                name = f"w{worker}-{index}"
                try:
                    response = client.post(
                        f"{live.api}/purge-cache/crash/pool", json={"cacheName": name}
                    )
                except httpx.TransportError:
                    return
                if response.status_code == 204:
                    acknowledged.append(name)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    live.kill_all()
    stop.set()
    for thread in threads:
        thread.join(10)
    assert len(acknowledged) > 50
    missing = set(acknowledged) - stored_names_of(live)
    assert not missing, f"{len(missing)} acknowledged purges lost"


def test_port_taken_is_one_clear_line(tmp_path: Path) -> None:
    """Starting on a busy port exits non-zero with one line naming the address."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("serve", "--port", str(port), "--data-dir", str(tmp_path))
    assert startup_failure(result).startswith(f"cannot listen on 127.0.0.1:{port}: ")


def test_unwritable_database_is_one_clear_line(tmp_path: Path) -> None:
    """A database path that cannot be created exits non-zero with one line, no traceback."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_cli(
        "serve",
        "--port",
        str(free_port()),
        "--data-dir",
        str(tmp_path),
        "--db",
        f"sqlite:///{blocker}/sub/x.db",
    )
    assert startup_failure(result).startswith(f"cannot use database sqlite:///{blocker}/sub/x.db")


@pytest.mark.parametrize(
    "content",
    ["not = [toml", "[[clients]]\nclient_id = 'a'\n", 'anonymous_scopes = ["\\t"]\n'],
)
def test_bad_clients_file_is_one_clear_line(tmp_path: Path, content: str) -> None:
    """Broken clients files stop start-up with one line naming the file."""
    clients = tmp_path / "clients.toml"
    clients.write_text(content)
    result = run_cli(
        "serve", "--port", str(free_port()), "--data-dir", str(tmp_path), "--clients", str(clients)
    )
    assert f"clients file {clients}" in startup_failure(result)
    assert len(result.stderr.strip().splitlines()) == 1


def test_first_start_creates_a_private_admin_credential(tmp_path: Path) -> None:
    """With no clients file the service makes one admin credential, mode 0600, and says where."""
    port = free_port()
    log = tmp_path / "log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "purgecache",
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path / "data"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    live = LiveServer(port, tmp_path / "data", process, log)
    try:
        wait_until_serving(live)
        clients_file = tmp_path / "data" / "clients.toml"
        assert clients_file.stat().st_mode & 0o777 == 0o600
        assert str(clients_file) in live.log_text()
        (admin,) = tomllib.loads(clients_file.read_text())["clients"]
        assert admin["access_token"] not in live.log_text()
        auth = HawkAuth(admin["client_id"], admin["access_token"])
        response = httpx.post(f"{live.api}/purge-cache/a/b", json={"cacheName": "c"}, auth=auth)
        assert response.status_code == 204
        assert httpx.get(f"{live.api}/purge-cache/a/b").status_code == 403  # no anonymous reads
    finally:
        live.stop()


def test_flags_override_environment(server_factory: ServerFactory, tmp_path: Path) -> None:
    """--port wins over PURGECACHE_PORT; PURGECACHE_RETENTION is read when no flag is given."""
    port = free_port()
    live = server_factory(port=port, env={"PURGECACHE_PORT": "1", "PURGECACHE_RETENTION": "1s"})
    assert live.port == port
    assert purge(live, "ret/pool", "c").status_code == 204
    time.sleep(1.2)
    assert listed(live, "ret/pool") == []


def test_expire_deletes_only_expired_rows(server_factory: ServerFactory, tmp_path: Path) -> None:
    """`purgecache expire` removes requests past retention and keeps the rest; exit code 0."""
    data = tmp_path / "d"
    live = server_factory("--retention", "30d", data_dir=data)
    assert purge(live, "exp/pool", "new").status_code == 204
    live.stop()
    past = int(time.time() * 1000) - 1000
    with sqlite_file(data / "purgecache.db") as conn:
        old = PurgeRequest("exp/pool", "old", past, past)
        conn.execute(
            "INSERT INTO cache_purges (worker_pool_id, cache_name, before, expires, wire) "
            "VALUES (?, ?, ?, ?, ?)",
            (old.worker_pool_id, old.cache_name, past, past, old.to_entry()),
        )
    assert stored_names(data / "purgecache.db") == {"old", "new"}
    result = run_cli("expire", "--data-dir", str(data))
    assert result.returncode == 0, result.stderr
    assert "expired 1" in result.stdout
    assert stored_names(data / "purgecache.db") == {"new"}


def test_logs_one_line_per_request_and_an_audit_line_per_purge(
    server_factory: ServerFactory,
) -> None:
    """Access and audit lines are JSON with the documented fields and never a secret."""
    live = server_factory()
    assert purge(live, "log/pool", "c").status_code == 204
    httpx.get(f"{live.api}/ping")
    live.stop()
    records = [json.loads(line) for line in live.log_text().splitlines() if line.startswith("{")]
    requests = [r for r in records if r.get("event") == "request"]
    audits = [r for r in records if r.get("event") == "purge"]
    assert {"method", "route", "status", "duration_ms", "client_id", "request_id"} <= set(
        requests[-1]
    )
    assert any(r["route"] == "purgeCache" and r["client_id"] == "admin" for r in requests)
    assert audits == [
        {
            "event": "purge",
            "client_id": "admin",
            "worker_pool_id": "log/pool",
            "cache_name": "c",
            "before": audits[0]["before"],
        }
    ]
    assert ADMIN[1] not in live.log_text()
    assert "Hawk " not in live.log_text()


def test_every_output_line_is_a_json_object(server_factory: ServerFactory) -> None:
    """Start, requests, psycopg_pool's warnings when the database vanishes, granian's lines and
    stop: every line the server writes is one JSON object."""
    url = pg.create_database()
    live = server_factory("--db", url)
    assert purge(live, "json/pool", "c").status_code == 204
    pg.vanish_database(url)
    assert httpx.get(f"{live.root_url}/__heartbeat__", timeout=30).status_code == 503
    assert live.stop() == 0
    records = json_records(live.log_text())
    loggers = {record.get("logger") for record in records}
    events = [record.get("event") for record in records]
    assert {"purgecache", "_granian", "psycopg.pool"} <= loggers
    assert {"serving", "request", "purge", "heartbeat-failed"} <= set(events)
    assert events[-1] == "stopped"


def test_test_clients_file_is_valid_toml() -> None:
    """The fixture's clients file parses (guards the other tests' assumptions)."""
    assert {c["client_id"] for c in tomllib.loads(CLIENTS_TOML)["clients"]} >= {"admin"}


def _worker_rss_kb(live: LiveServer) -> int:
    """Resident memory of the server's worker process (the child of the supervisor)."""
    children = Path(f"/proc/{live.process.pid}/task/{live.process.pid}/children").read_text()
    worker = int(children.split()[0])
    for line in Path(f"/proc/{worker}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_listing_does_not_leak_memory(server_factory: ServerFactory, tmp_path: Path) -> None:
    """Hundreds of 1000-row pages leave the worker's memory where it was (no leaked bodies)."""
    live = server_factory(data_dir=tmp_path / "d")
    with sqlite_file(live.db_path) as conn:
        far = 2**50
        conn.executemany(
            "INSERT INTO cache_purges (worker_pool_id, cache_name, before, expires, wire) "
            "VALUES (?, ?, ?, ?, ?)",
            [
                (r.worker_pool_id, r.cache_name, 1, far, r.to_entry())
                for r in (PurgeRequest(f"p{i // 100}/w", f"c{i}", 1, far) for i in range(3000))
            ],
        )
    url = f"{live.api}/purge-cache/list?limit=1000"
    with httpx.Client(auth=HawkAuth(*ADMIN), timeout=10) as client:
        for _ in range(50):
            assert client.get(url).status_code == 200
        before = _worker_rss_kb(live)
        for _ in range(300):
            assert client.get(url).status_code == 200
    grown_mb = (_worker_rss_kb(live) - before) / 1024
    assert grown_mb < 30, f"worker grew {grown_mb:.0f} MB over 300 pages"


def test_sigterm_under_load_answers_or_refuses_but_never_fails(
    server_factory: ServerFactory,
) -> None:
    """Requests in flight at SIGTERM get their answer (never a 5xx) and every 204 is stored."""
    live = server_factory()
    outcomes: list[str] = []
    acknowledged: list[str] = []
    stop = threading.Event()

    def writer(worker: int) -> None:
        with httpx.Client(auth=HawkAuth(*ADMIN), timeout=10) as client:
            for index in range(100_000):
                if stop.is_set():
                    return
                name = f"t{worker}-{index}"
                try:
                    status = client.post(
                        f"{live.api}/purge-cache/term/pool", json={"cacheName": name}
                    ).status_code
                except httpx.TransportError:
                    return  # the listener is gone: refused, not failed
                outcomes.append(str(status))
                if status == 204:
                    acknowledged.append(name)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    started = time.monotonic()
    assert live.stop(signal.SIGTERM, timeout=10) == 0
    assert time.monotonic() - started < 10
    stop.set()
    for thread in threads:
        thread.join(10)
    assert set(outcomes) == {"204"}
    assert set(acknowledged) <= stored_names(live.db_path)

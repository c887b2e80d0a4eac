"""Fixtures that run the real service: `purgecache serve` on a loopback port with a real SQLite
file in a temporary data directory, driven over real sockets.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

import pg

SPEC_DIR = Path(__file__).resolve().parents[2] / "shared" / "spec"

ADMIN = ("admin", "admin-token-0123456789")
READER = ("reader", "reader-token-0123456789")
LIMITED = ("limited", "limited-token-0123456789")

CLIENTS_TOML = f"""
anonymous_scopes = ["purge-cache:purge-requests::public/*"]

[[clients]]
client_id = "{ADMIN[0]}"
access_token = "{ADMIN[1]}"
scopes = ["*"]

[[clients]]
client_id = "{READER[0]}"
access_token = "{READER[1]}"
scopes = ["purge-cache:purge-requests::*", "purge-cache:all-purge-requests"]

[[clients]]
client_id = "{LIMITED[0]}"
access_token = "{LIMITED[1]}"
scopes = ["purge-cache:proj-a/linux:cache-1"]
"""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """A running `purgecache serve` process."""

    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    args: list[str] = field(default_factory=list)
    backend: str = "sqlite"

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.root_url}/api/purge-cache/v1"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "purgecache.db"

    def log_text(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def kill_all(self) -> None:
        """SIGKILL the server and its worker processes at once (a crash)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Signal the server and wait for it to exit; return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)


def worker_pids(live: LiveServer) -> list[int]:
    """The worker processes of a server (the children of `purgecache serve`)."""
    pid = live.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return sorted(int(child) for child in children)


def log_records(live: LiveServer, event: str) -> list[dict[str, object]]:
    """The server's log lines of one event."""
    lines = (json.loads(line) for line in live.log_text().splitlines() if line.startswith("{"))
    return [record for record in lines if record.get("event") == event]


def wait_until_serving(server: LiveServer, timeout: float = 20) -> None:
    """Poll `ping` until it answers, failing with the server's log if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log_text()}")
        try:
            if httpx.get(f"{server.api}/ping", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server did not start:\n{server.log_text()}")


def start_server(
    data_dir: Path, *extra: str, port: int | None = None, env: dict[str, str] | None = None
) -> LiveServer:
    """Start `purgecache serve` with the test clients file in `data_dir`, on `port` or a free
    one. A free port can be taken by another test process before the server binds it: then
    the server exits saying so, and another port is tried (its `serving` line, logged once
    it listens, tells that the port is its own and not another server's)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    clients = data_dir / "test-clients.toml"
    if not clients.exists():
        clients.write_text(CLIENTS_TOML)
    for attempt in range(3):
        server = _spawn_server(data_dir, clients, port or free_port(), extra, env)
        if _listens(server) or port is not None or attempt == 2:
            break
    wait_until_serving(server)
    return server


def _spawn_server(
    data_dir: Path, clients: Path, port: int, extra: tuple[str, ...], env: dict[str, str] | None
) -> LiveServer:
    args = [sys.executable, "-m", "purgecache", "serve", "--port", str(port)]
    args += ["--data-dir", str(data_dir), "--clients", str(clients), *extra]
    log_path = data_dir / f"server-{port}-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    return LiveServer(port, data_dir, process, log_path, args)


def _listens(server: LiveServer, timeout: float = 20) -> bool:
    """Wait until the server logs that it listens (True) or exits unable to (False); any
    other outcome is left to `wait_until_serving` to report."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = server.log_text()
        if '"event":"serving"' in text:
            return True
        if server.process.poll() is not None:
            return "cannot listen on" not in text
        time.sleep(0.02)
    return True


BACKENDS = ["sqlite", "postgres"]


def db_args(backend: str) -> list[str]:
    """`serve` arguments for a fresh database of this backend (SQLite: the data directory's)."""
    if backend == "sqlite":
        return []
    return ["--db", pg.create_database()]


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the run's first process: no pytest-xdist worker
        pg.start_run()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):  # after every worker finished
        pg.drop_databases()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start servers on demand; every one still running is stopped after the test."""
    started: list[LiveServer] = []

    def factory(*extra: str, data_dir: Path | None = None, **kwargs: object) -> LiveServer:
        server = start_server(data_dir or tmp_path / "data", *extra, **kwargs)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield factory
    for server in started:
        if server.process.poll() is None:
            server.kill_all()


@pytest.fixture(params=BACKENDS)
def backend_server_factory(
    request: pytest.FixtureRequest, server_factory: Callable[..., LiveServer]
) -> Callable[..., LiveServer]:
    """Like server_factory, once per backend, each server on a fresh database."""
    backend = request.param

    def factory(*extra: str, **kwargs: object) -> LiveServer:
        live = server_factory(*db_args(backend), *extra, **kwargs)
        live.backend = backend
        return live

    return factory


@pytest.fixture(
    scope="module",
    params=[("sqlite", "rsgi"), ("postgres", "rsgi"), ("sqlite", "asgi")],
    ids=["sqlite", "postgres", "sqlite-asgi"],
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One server per backend (and the ASGI interface once) shared by a test module."""
    backend, interface = request.param
    extra = [*db_args(backend), "--interface", interface, "--cache-time", "300s"]
    live = start_server(tmp_path_factory.mktemp("server"), *extra)
    live.backend = backend
    yield live
    live.stop()

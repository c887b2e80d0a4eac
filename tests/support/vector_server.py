"""The vector app served by granian in a subprocess on a loopback port, and raw HTTP requests.

Requests go through `http.client` with the request target passed through untouched
(`putrequest` with our own `Host`), so the path and query reach the server byte-for-byte as the
vector signed them: no client-side normalisation or re-encoding.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from purgecache.server import prepare
from purgecache.settings import Settings

from support.vector_app import NOW_HEADER, SETTINGS_ENV, settings_json

TESTS_DIR = Path(__file__).resolve().parents[1]
REPO_DIR = TESTS_DIR.parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class RawResponse:
    """What came back: status, headers (lower-case names) and the body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class VectorServer:
    """A running granian process serving `support.vector_app:app`."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_text(self) -> str:
        """Everything the server wrote so far."""
        return self.log_path.read_text("utf-8", "replace")

    def request(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes | None = None,
        now_ms: int | None = None,
    ) -> RawResponse:
        """Send one request with exactly this target and these headers (Host included)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                connection.putheader(name, value)
            if now_ms is not None:
                connection.putheader(NOW_HEADER.decode(), str(now_ms))
            if body is not None:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            data = response.read()
            return RawResponse(
                response.status, {k.lower(): v for k, v in response.getheaders()}, data
            )
        finally:
            connection.close()

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM the server and wait; kill it if it does not exit in time."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)


def start_vector_server(
    data_dir: Path,
    clients_toml: str,
    root_url: str,
    interface: str = "rsgi",
    factory: str = "support.vector_app:app",
) -> VectorServer:
    """Write the clients file, upgrade the database, start granian with `factory` and wait
    until it serves."""
    data_dir.mkdir(parents=True, exist_ok=True)
    clients_path = data_dir / "vector-clients.toml"
    clients_path.write_text(clients_toml, encoding="utf-8")
    port = free_port()
    wanted = Settings(
        port=port,
        root_url=root_url,
        data_dir=str(data_dir),
        clients_file=str(clients_path),
        access_log=False,
    )
    # `prepare` runs its own event loop, which it cannot do on a thread where one runs
    # already (Playwright's sync API leaves one running after the browser tests).
    with ThreadPoolExecutor(max_workers=1) as thread:
        settings, _clients, _created = thread.submit(prepare, wanted).result()
    env = {
        **os.environ,
        SETTINGS_ENV: settings_json(settings),
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(TESTS_DIR), os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    args = [
        sys.executable, "-m", "granian", "--interface", interface, "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        factory,
    ]  # fmt: skip
    log_path = data_dir / f"granian-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_DIR
        )
    server = VectorServer(port, process, log_path)
    try:
        _wait_until_serving(server)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_serving(server: VectorServer, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"granian exited early:\n{server.log_text()}")
        try:
            ping = server.request("GET", "/api/purge-cache/v1/ping", [("Host", "127.0.0.1")])
            if ping.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"granian did not start:\n{server.log_text()}")

"""The purgecache service under test: its clients file, start-up, and proof that auth is on."""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.client import ServiceClient
from harness.fake_auth import FakeAuth
from harness.hawk import Credentials
from harness.procs import Registry, Started, free_port, launch, wait_for_port
from harness.seed import POOL, WRITE_POOL

API = "/api/purge-cache/v1"
# A worker-like client: the scopes the endpoints need, among others a real worker holds.
SCOPES = (
    "queue:claim-work:proj-bench/linux-large-2204",
    "queue:worker-id:bench-workers/*",
    "secrets:get:project/bench/*",
    "docker-worker:cache:gecko-level-3-*",
    "generic-worker:cache:gecko-level-3-*",
    "auth:sentry:bench",
    "index:insert-task:project.bench.*",
    f"purge-cache:purge-requests::{POOL}",
    f"purge-cache:{WRITE_POOL}:*",
    "purge-cache:all-purge-requests",
    f"purge-cache:report::{POOL}:bench/*",  # reportWorkerSync: every bench/<workerId>
)


@dataclass(frozen=True)
class Variant:
    """One configuration of the service, measured beside nginx and the other variants."""

    label: str  # "default", "--no-access-log", "e797db6 default", ...
    access_log: bool = True  # serve's default; off is `--no-access-log`
    revision: str = ""  # a commit measured from an exported copy of its src; "" = the checkout
    src: str = ""  # that copy's src folder, first on the service's PYTHONPATH

    @property
    def flags(self) -> list[str]:
        return [] if self.access_log else ["--no-access-log"]


DEFAULT = Variant("default")


class ServiceRefused(RuntimeError):
    """`purgecache serve` would not start (e.g. it does not know the database URL)."""


def write_clients_file(path: Path, granted: Sequence[str] = SCOPES) -> Credentials:
    """A clients file with one worker-like client holding `granted`; no anonymous scopes."""
    credentials = Credentials("bench-worker", secrets.token_urlsafe(33))
    scopes = ", ".join(f'"{scope}"' for scope in granted)
    path.write_text(
        "anonymous_scopes = []\n\n[[clients]]\n"
        f'client_id = "{credentials.client_id}"\n'
        f'access_token = "{credentials.access_token}"\n'
        f"scopes = [{scopes}]\n"
    )
    path.chmod(0o600)
    return credentials


def start_service(
    registry: Registry,
    name: str,
    workdir: Path,
    db_url: str,
    clients_file: Path,
    *,
    workers: int,
    cache_time: str,
    auth_root_url: str = "",
    variant: Variant = DEFAULT,
    wrapper: Sequence[str] = (),
    ready_seconds: float = 60,
    extra_env: dict[str, str] | None = None,
) -> tuple[Started, int]:
    """A fresh `purgecache serve` on a free loopback port; ServiceRefused if it will not start.
    With `auth_root_url`, it asks that auth service for every verdict (the clients file is
    then unused). Its stdout and stderr (the access log, when on) go to `<name>.log` in
    `workdir`, as a service manager would write them. `wrapper` runs it under another program
    (valgrind). `extra_env` is added to its environment (the harness's own `PURGECACHE_*`
    variables are not passed on)."""
    port = free_port()
    data_dir = workdir / f"data-{name}"
    data_dir.mkdir(exist_ok=True)
    argv = [
        sys.executable, "-m", "purgecache", "serve",
        "--host", "127.0.0.1", "--port", str(port),
        "--data-dir", str(data_dir), "--clients", str(clients_file), "--db", db_url,
        "--cache-time", cache_time, "--workers", str(workers), *variant.flags,
    ]  # fmt: skip
    if auth_root_url:
        argv += ["--auth-root-url", auth_root_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PURGECACHE_")}
    env.update(extra_env or {})
    if variant.src:  # otherwise the harness's own path, which may name another src (README)
        env["PYTHONPATH"] = variant.src
    started = registry.add(launch(name, [*wrapper, *argv], workdir / f"{name}.log", env))
    try:
        wait_for_port(port, ready_seconds, started.process)
        _wait_for_ping(port, ready_seconds / 2)
    except RuntimeError as error:
        registry.stop(started)
        raise ServiceRefused(f"{error}: {started.log_tail() or '(no output)'}") from error
    return started, port


def _wait_for_ping(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            client = ServiceClient(port, None, timeout=5)
            if client.request("GET", f"{API}/ping").status == 200:
                client.close()
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"ping did not answer 200 within {timeout:.0f} s")
        time.sleep(0.2)


def check_auth_is_on(port: int, credentials: Credentials) -> None:
    """A wrong key must get 401 and no credentials 403, or the benchmark would be meaningless."""
    target = f"{API}/purge-cache/{POOL.replace('/', '%2F')}"
    forger = Credentials(credentials.client_id, credentials.access_token + "-wrong")
    statuses = []
    for who in (credentials, forger, None):
        client = ServiceClient(port, who)
        try:
            statuses.append(client.request("GET", target).status)
        finally:
            client.close()
    if statuses != [200, 401, 403]:
        raise RuntimeError(
            f"auth check: signed/wrong key/unsigned gave {statuses}, wanted [200, 401, 403]"
        )


def check_remote_auth(port: int, credentials: Credentials, auth: FakeAuth, body: bytes) -> None:
    """The fake auth service is the only judge: its fixed success verdict lets the signed
    request, the wrong key and the unsigned request through alike (the clients file would
    give 200/401/403), the answer is `body`, and each request cost exactly one call to it."""
    target = f"{API}/purge-cache/{POOL.replace('/', '%2F')}"
    forger = Credentials(credentials.client_id, credentials.access_token + "-wrong")
    before = auth.calls()
    replies = []
    for who in (credentials, forger, None):
        client = ServiceClient(port, who)
        try:
            replies.append(client.request("GET", target))
        finally:
            client.close()
    calls = auth.calls() - before
    statuses = [reply.status for reply in replies]
    if statuses != [200, 200, 200] or calls != len(replies):
        raise RuntimeError(
            f"remote auth check: signed/wrong key/unsigned gave {statuses} with {calls} calls "
            f"to the fake auth service, wanted [200, 200, 200] with {len(replies)}"
        )
    if _without_times(replies[0].body) != _without_times(body):
        raise RuntimeError(f"remote auth: purgeRequests answered {replies[0].body[:300]!r}")


def _without_times(body: bytes) -> object:
    """A purgeRequests answer without its `before` times (another revision's database was
    seeded a moment apart from the checkout's, from which `body` came)."""
    try:
        requests = json.loads(body)["requests"]
    except (ValueError, KeyError, TypeError):
        return body
    return [{k: v for k, v in entry.items() if k != "before"} for entry in requests]

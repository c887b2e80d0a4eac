"""A fake Taskcluster auth service for `purgecache serve --auth-root-url`: nginx answering
`authenticateHawk` with one fixed success verdict.

A second nginx process (`master_process off`, one worker, access log off, effectively unlimited
keep-alive requests), apart from the yardstick nginx so that each one's CPU is metered on its
own. The verdict never varies and nothing checks the request, but every service request still
costs one real HTTP round trip to it: the service never caches verdicts. `stub_status` counts
the requests it answered, which proves it is consulted once per service request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.client import ServiceClient
from harness.procs import Registry, Started, free_port, launch, wait_for_port

AUTHENTICATE_HAWK = "/api/auth/v1/authenticate-hawk"
STUB_STATUS = "/stub_status"
EXPIRES = "2100-01-01T00:00:00.000Z"

CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    tcp_nodelay on;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    client_body_buffer_size 16k;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    types {{ }}
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        server_name _;
        location = {authenticate} {{
            default_type application/json;
            return 200 '{verdict}';
        }}
        location = {stub_status} {{ stub_status; }}
        location / {{ return 404; }}
    }}
}}
"""


def success_verdict(client_id: str, scopes: tuple[str, ...]) -> str:
    """authenticateHawk's answer for a valid Hawk request by `client_id`; no `hash`, so the
    service does not check a payload hash itself."""
    verdict = {
        "status": "auth-success",
        "scheme": "hawk",
        "scopes": list(scopes),
        "clientId": client_id,
        "expires": EXPIRES,
    }
    return json.dumps(verdict, separators=(",", ":"))


@dataclass
class FakeAuth:
    """The running fake auth service."""

    server: Started
    port: int
    verdict: str
    stub_reads: int = 0  # each read of stub_status is itself one request it counts

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def calls(self) -> int:
        """Requests answered so far, other than its own stub_status reads."""
        client = ServiceClient(self.port, None, timeout=10)
        try:
            reply = client.request("GET", STUB_STATUS)
        finally:
            client.close()
        if reply.status != 200:
            raise RuntimeError(f"fake auth stub_status: {reply.status}: {reply.body[:200]!r}")
        self.stub_reads += 1
        # "Active connections: 1\nserver accepts handled requests\n 1 1 1\nReading: ..."
        requests = int(reply.body.decode().splitlines()[2].split()[2])
        return requests - self.stub_reads


def write_config(workdir: Path, port: int, verdict: str) -> Path:
    """nginx.conf answering authenticate-hawk with `verdict`."""
    if any(char in verdict for char in "'\\$"):  # they would need escaping in the config
        raise ValueError(f"verdict not usable in an nginx string: {verdict}")
    (workdir / "tmp").mkdir(exist_ok=True)
    config = workdir / "nginx.conf"
    config.write_text(
        CONFIG.format(
            dir=workdir,
            port=port,
            authenticate=AUTHENTICATE_HAWK,
            stub_status=STUB_STATUS,
            verdict=verdict,
        )
    )
    return config


def start_fake_auth(registry: Registry, nginx: str, workdir: Path, verdict: str) -> FakeAuth:
    """The fake auth service on a free loopback port, checked to answer the verdict."""
    workdir.mkdir(exist_ok=True)
    port = free_port()
    config = write_config(workdir, port, verdict)
    argv = [nginx, "-p", str(workdir), "-c", str(config)]
    started = registry.add(launch("auth-nginx", argv, workdir / "nginx.log"))
    try:
        wait_for_port(port, 15, started.process)
    except RuntimeError as error:
        registry.stop(started)
        raise RuntimeError(f"fake auth nginx: {error}: {started.log_tail()}") from error
    fake = FakeAuth(started, port, verdict)
    _check_answers(fake)
    return fake


def _check_answers(fake: FakeAuth) -> None:
    client = ServiceClient(fake.port, None)
    try:
        reply = client.request("POST", AUTHENTICATE_HAWK, b'{"method":"get"}')
    finally:
        client.close()
    if reply.status != 200 or json.loads(reply.body) != json.loads(fake.verdict):
        raise RuntimeError(f"fake auth answers {reply.status}: {reply.body[:300]!r}")

"""nginx as the yardstick: the service's own response bodies as static files, 204 for the POST.

One process (`master_process off`, so its PID is the worker's), access log off, sendfile,
open_file_cache and effectively unlimited keep-alive requests: as in shared/perf-notes.md.
nginx decodes `%2F` before matching locations, so the exact-match locations use the decoded
path; the query string (`?limit=1000`) is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from harness.procs import Registry, Started, free_port, launch, wait_for_port

CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    open_file_cache max=64 inactive=600s;
    open_file_cache_valid 600s;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    types {{ }}
    default_type "application/json; charset=utf-8";
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        server_name _;
{locations}
        location / {{ return 404; }}
    }}
}}
"""


def write_config(
    workdir: Path, port: int, bodies: Mapping[str, bytes], no_content: list[str]
) -> Path:
    """nginx.conf serving `bodies` (decoded path -> bytes) and `return 204` at `no_content`."""
    (workdir / "tmp").mkdir(exist_ok=True)
    static = workdir / "static"
    static.mkdir(exist_ok=True)
    locations = []
    for index, (path, body) in enumerate(sorted(bodies.items())):
        file = static / f"body-{index}.json"
        file.write_bytes(body)
        locations.append(f"        location = {path} {{ alias {file}; }}")
    locations += [f"        location = {path} {{ return 204; }}" for path in no_content]
    config = workdir / "nginx.conf"
    config.write_text(CONFIG.format(dir=workdir, port=port, locations="\n".join(locations)))
    return config


def start_nginx(
    registry: Registry,
    nginx: str,
    workdir: Path,
    bodies: Mapping[str, bytes],
    no_content: list[str],
) -> tuple[Started, int]:
    """nginx on a free loopback port, ready to serve."""
    port = free_port()
    config = write_config(workdir, port, bodies, no_content)
    started = registry.add(
        launch("nginx", [nginx, "-p", str(workdir), "-c", str(config)], workdir / "nginx.log")
    )
    try:
        wait_for_port(port, 15, started.process)
    except RuntimeError as error:
        registry.stop(started)
        raise RuntimeError(f"nginx: {error}: {started.log_tail()}") from error
    return started, port

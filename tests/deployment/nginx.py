"""nginx run by a test with deploy/nginx/purgecache.conf, moved onto a free port, a throwaway
certificate and the test's replicas (nothing else in the file changes)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from deployment.tools import DEPLOY, require_tool

SITE = DEPLOY / "nginx" / "purgecache.conf"
# The lines that pass the client's host, scheme and port (what a wrong setup forgets).
FORWARDING = re.compile(
    r"^\s*proxy_set_header (Host|X-Forwarded-Proto|X-Forwarded-Port) .*\n", re.MULTILINE
)

MAIN = """\
{user}
pid {prefix}/nginx.pid;
error_log {prefix}/error.log notice;
worker_processes 1;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {site};
}}
"""


def site_config(
    listen: str, replicas: list[str], cert: Path, key: Path, *, forward: bool = True
) -> str:
    """The shipped server block, listening on `listen` (address:port) in front of
    `replicas` (address:port each); without `forward`, the wrong setup that drops Host and
    X-Forwarded-* (nginx then sends its upstream's name as Host)."""
    text = SITE.read_text()
    text = text.replace("listen 443 ssl http2;", f"listen {listen} ssl http2;")
    text = re.sub(r"^\s*listen \[::\]:443 .*\n", "", text, flags=re.MULTILINE)
    servers = "".join(f"    server {replica};\n" for replica in replicas)
    text = re.sub(r"^    server 127\.0\.0\.1:8080; .*\n", servers, text, flags=re.MULTILINE)
    text = text.replace("/etc/ssl/purgecache/fullchain.pem", str(cert))
    text = text.replace("/etc/ssl/purgecache/privkey.pem", str(key))
    if not forward:
        text = FORWARDING.sub("", text)
    assert not re.search(r"listen (\[::\]:)?443\b|server 127\.0\.0\.1:8080|/etc/ssl", text), text
    return text


class Nginx:
    """nginx in the foreground with its own prefix (pid, logs, temporary files)."""

    def __init__(self, prefix: Path, site: str, netns: str | None = None) -> None:
        nginx = require_tool("nginx", under=("/usr/sbin",))
        prefix.mkdir(parents=True, exist_ok=True)
        (prefix / "site.conf").write_text(site)
        user = "user root;" if os.geteuid() == 0 else ""  # workers write the prefix's files
        main = MAIN.format(user=user, prefix=prefix, site=prefix / "site.conf")
        (prefix / "nginx.conf").write_text(main)
        command = [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
        if netns is not None:
            command = ["ip", "netns", "exec", netns, *command]
        subprocess.run([*command, "-t", "-q"], check=True, capture_output=True, timeout=30)
        self.prefix = prefix
        with (prefix / "stderr.log").open("wb") as stderr:
            self.process = subprocess.Popen(
                [*command, "-g", "daemon off;"],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )

    def wait_listening(self, host: str, port: int, timeout: float = 10) -> None:
        """Until `host:port` accepts connections (checked from this network namespace)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.error_log()
            try:
                socket.create_connection((host, port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"nginx is not listening on {host}:{port}: {self.error_log()}")

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGQUIT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

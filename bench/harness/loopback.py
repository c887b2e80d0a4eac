"""`purgecache serve` on a loopback port for the one-off benches (admin page filter, purge
status): a clients file with one admin credential, no access log, started and waited for."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from harness.procs import free_port

ADMIN = ("admin", "admin-token-0123456789")
CLIENTS = f'[[clients]]\nclient_id = "{ADMIN[0]}"\naccess_token = "{ADMIN[1]}"\nscopes = ["*"]\n'


def serve(data_dir: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    """The service with `data_dir` and `extra` arguments, and its root URL once it answers."""
    (data_dir / "clients.toml").write_text(CLIENTS)
    port = free_port()
    args = ["--port", str(port), "--data-dir", str(data_dir), *extra]
    args += ["--clients", str(data_dir / "clients.toml"), "--no-access-log"]
    process = subprocess.Popen(
        [sys.executable, "-m", "purgecache", "serve", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    root = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            if httpx.get(f"{root}/api/purge-cache/v1/ping", timeout=1).status_code == 200:
                return process, root
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the service did not start")

"""The floor beside nginx: granian serving the service's recorded answers with no app work.

The service runs on granian (RSGI, uvloop, one worker, asyncio tasks: `granian_options` in
`purgecache.server`). Whatever the service does, it cannot answer faster than granian does
with an app that only looks up a prepared answer, so the floor's ratio to nginx bounds every
ratio goal from above on this machine: a goal above the floor is out of reach of any Python
app on granian here, and the service's share of the floor is what its own code leaves.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from harness.client import Reply, ServiceClient
from harness.measure import FLOOR
from harness.procs import Registry, Started, free_port, launch, wait_for_port

# granian writes these itself; the rest of the service's headers are replayed as they came
GRANIAN_HEADERS = frozenset({"server", "date", "content-length"})


def routes(answers: Mapping[tuple[str, str], Reply]) -> list[dict[str, object]]:
    """The routes file's entries: (method, decoded path) -> the service's answer."""
    return [
        {
            "method": method,
            "path": path,
            "status": reply.status,
            "headers": [(k, v) for k, v in reply.headers if k.lower() not in GRANIAN_HEADERS],
            "body": base64.b64encode(reply.body).decode(),
        }
        for (method, path), reply in sorted(answers.items())
    ]


def start_floor(
    registry: Registry, workdir: Path, answers: Mapping[tuple[str, str], Reply]
) -> tuple[Started, int]:
    """granian with the floor app on a free loopback port, checked to answer every route with
    the recorded status and body."""
    workdir.mkdir(exist_ok=True)
    routes_file = workdir / "floor-routes.json"
    routes_file.write_text(json.dumps(routes(answers)))
    port = free_port()
    bench_dir = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, BENCH_FLOOR_ROUTES=str(routes_file), PYTHONPATH=bench_dir)
    argv = [
        sys.executable, "-m", "granian", "--interface", "rsgi", "--loop", "uvloop",
        "--task-impl", "asyncio", "--workers", "1", "--no-log",
        "--host", "127.0.0.1", "--port", str(port), "harness.floor_app:app",
    ]  # fmt: skip
    started = registry.add(launch(FLOOR, argv, workdir / "floor.log", env))
    try:
        wait_for_port(port, 30, started.process)
        client = ServiceClient(port, None)
        try:
            for (method, path), reply in answers.items():
                got = client.request(method, path, b"{}" if method == "POST" else None)
                if (got.status, got.body) != (reply.status, reply.body):
                    raise RuntimeError(f"{method} {path}: {got.status}, {len(got.body)} bytes")
        finally:
            client.close()
    except RuntimeError as error:
        registry.stop(started)
        raise RuntimeError(f"floor: {error}: {started.log_tail()}") from error
    return started, port

"""`python -m harness.inprocess`: the application's own cost per request, without a server.

Calls `PurgeCacheApp.__rsgi__` directly with prebuilt requests (ping, a signed purgeRequests
of one cached pool, signed purgeCache calls each naming a new cache, or signed reportWorkerSync
calls of 10,000 distinct workers in turn, as `bench/run` sends them), as granian would, and
counts instructions with callgrind: the run serving N requests minus the same run serving
none, divided by N (the headers are made in both). What it leaves out (granian's Rust side,
the event loop's I/O) is the same for every revision, so it compares revisions of the Python
side closely; for the writes the writer thread's commits are counted too (with
`--concurrency N`, N requests in flight share commits as under load; 1: one commit each).
`--log-cost` of `bench/run` measures the live worker. Counts vary by about ±2k instructions
between runs (random nonces).

    PYTHONPATH=bench python -m harness.inprocess --endpoint purgeRequests --requests 2000
    PYTHONPATH=bench python -m harness.inprocess --src /path/to/other/src   # another revision
    PYTHONPATH=bench python -m harness.inprocess --endpoint purgeRequests --wall --requests 20000

`--wall` times the requests instead (microseconds, best of 5 passes; ping and a cached
purgeRequests, which finish without awaiting); `--memo-authenticate` with it answers each
verdict from a dict after the first pass, so the difference is what checking the signature
costs in place.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.hawk import (
    EMPTY_PAYLOAD_HASH,
    Credentials,
    Signer,
    Target,
    fresh_nonce,
    payload_hash,
)
from harness.reports import REPORT_WORKERS, ReportBodies

HOST, PORT = "localhost", 8080
API = "/api/purge-cache/v1/"
ADMIN = Credentials("bench-admin", "bench-admin-token-0123456789abcdef")
CLIENTS = f"""
[[clients]]
client_id = "{ADMIN.client_id}"
access_token = "{ADMIN.access_token}"
scopes = ["*"]
"""


POSTS = {"purgeCache": "purge-cache/", "reportWorkerSync": "ext/report/"}  # then the pool


class Scope:
    """The parts of granian's RSGI scope the application reads."""

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> None:
        self.method, self.path, self.query_string = method, path, ""
        self.headers, self.scheme, self.client = headers, "http", "127.0.0.1:40000"
        self.body = body  # not granian's: what this request's Protocol hands over


class Protocol:
    """Granian's RSGI protocol, reduced to what a request with a small body uses."""

    status = 0

    def __init__(self, body: bytes = b"") -> None:
        self._body = body

    async def __call__(self) -> bytes:
        return self._body

    def response_bytes(self, status: int, headers: Any, body: bytes) -> None:
        self.status = status

    def response_empty(self, status: int, headers: Any) -> None:
        self.status = status


def requests(endpoint: str, count: int) -> list[Scope]:
    """`count` distinct requests (fresh nonces), made before anything is counted."""
    if endpoint == "ping":
        return [Scope("GET", f"{API}ping", {"host": f"{HOST}:{PORT}"}) for _ in range(count)]
    if endpoint in POSTS:
        path = POSTS[endpoint]
        post = Signer(ADMIN, Target("POST", f"{API}{path}a%2Fb", HOST, PORT))
        if endpoint == "purgeCache":
            bodies = [b'{"cacheName":"bench-%d"}' % n for n in range(count)]
        else:
            reports = ReportBodies(REPORT_WORKERS, int(time.time() * 1000))
            bodies = [reports().encode() for _ in range(count)]
        return [
            Scope(
                "POST",
                f"{API}{path}a/b",
                {
                    "host": f"{HOST}:{PORT}",
                    "content-type": "application/json",
                    "content-length": str(len(body)),
                    "authorization": post(
                        int(time.time()), fresh_nonce(), payload_hash("application/json", body)
                    ),
                },
                body,
            )
            for body in bodies
        ]
    sign = Signer(ADMIN, Target("GET", f"{API}purge-cache/a%2Fb", HOST, PORT))
    now = int(time.time())
    return [
        Scope(
            "GET",
            f"{API}purge-cache/a/b",  # RSGI hands over the path decoded
            {
                "host": f"{HOST}:{PORT}",
                "authorization": sign(now, fresh_nonce(), EMPTY_PAYLOAD_HASH),
            },
        )
        for _ in range(count)
    ]


def _build(access_log: bool, db_url: str) -> tuple[Path, Any]:
    """A fresh clients file (and SQLite file, unless `db_url`), the access log to a file as
    `serve` writes it, and the settings."""
    from purgecache.settings import Settings

    folder = Path(tempfile.mkdtemp(prefix="pc-inprocess-"))
    (folder / "clients.toml").write_text(CLIENTS)
    if access_log:
        logger = logging.getLogger("purgecache.access")
        logger.addHandler(logging.FileHandler(folder / "access.log"))
        logger.setLevel(logging.INFO)
        logger.propagate = False
    settings = Settings(
        db_url=db_url or f"sqlite:///{folder / 'db.sqlite'}",
        clients_file=str(folder / "clients.toml"),
        access_log=access_log,
    )
    return folder, settings


async def _started_app(folder: Path, settings: Any) -> Any:
    """The app on an upgraded database, started, with one purge of the pool `a/b`."""
    from purgecache.server import authenticator_for, build_app
    from purgecache.storage import open_storage

    storage = open_storage(settings.db_url)
    await storage.upgrade()
    await storage.close()
    app = build_app(settings, authenticator_for(settings, folder / "clients.toml"))
    await app.startup()
    await app.service.purge("a/b", "cache-1")
    return app


def serve(
    endpoint: str, count: int, serving: bool, access_log: bool, concurrency: int, db_url: str
) -> None:
    """Build the app on a fresh SQLite file (or `db_url`), warm the pool's cache, serve the
    requests."""
    folder, settings = _build(access_log, db_url)

    async def run() -> None:
        app = await _started_app(folder, settings)
        batch = requests(endpoint, count + 1)
        ok = 204 if endpoint in POSTS else 200
        first = Protocol(batch[0].body)
        await app.__rsgi__(batch[0], first)  # the pool's answer is cached from here on
        assert first.status == ok, first.status

        async def one(scope: Scope) -> None:
            protocol = Protocol(scope.body)
            await app.__rsgi__(scope, protocol)
            assert protocol.status == ok, protocol.status

        if serving:
            for start in range(1, len(batch), concurrency):
                await asyncio.gather(*(one(s) for s in batch[start : start + concurrency]))
        await app.shutdown()

    asyncio.run(run())


def wall(endpoint: str, count: int, access_log: bool, memo_authenticate: bool) -> float:
    """Microseconds per request, best of 5 passes over `count` prebuilt requests, each
    coroutine driven straight to its end (no event loop turn: only requests answered without
    awaiting, ping and a cached purgeRequests, can be timed so). `memo_authenticate`: the
    verdicts come from a dict filled in the first pass, so the passes after it show what a
    request costs when checking its signature is free."""
    from purgecache.auth import credentials

    folder, settings = _build(access_log, "")
    if memo_authenticate:
        verdicts: dict[Any, Any] = {}
        authenticate = credentials.authenticate

        def remembered(*args: Any) -> Any:
            key = args[5]  # the Authorization header: distinct per request
            verdict = verdicts.get(key)
            if verdict is None:
                verdict = verdicts[key] = authenticate(*args)
            return verdict

        credentials.authenticate = remembered  # type: ignore[assignment]

    async def run() -> float:
        app = await _started_app(folder, settings)
        batch = requests(endpoint, count + 1)
        await app.__rsgi__(batch[0], Protocol())  # the pool's answer is cached from here on
        protocols = [Protocol() for _ in range(count)]
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for scope, protocol in zip(batch[1:], protocols, strict=True):
                try:
                    app.__rsgi__(scope, protocol).send(None)
                except StopIteration:
                    continue
                raise SystemExit(f"--wall: a {endpoint} request awaited something")
            best = min(best, time.perf_counter() - started)
        assert all(p.status == 200 for p in protocols), {p.status for p in protocols}
        await app.shutdown()
        return best / count * 1e6

    return asyncio.run(run())


def callgrind_total(args: argparse.Namespace, serving: bool) -> int:
    out = Path(tempfile.mkdtemp(prefix="pc-cg-")) / "callgrind.out"
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if args.src:
        env["PYTHONPATH"] = os.pathsep.join([args.src, env.get("PYTHONPATH", "")])
    command = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
        sys.executable, "-m", "harness.inprocess", "--child",
        "--endpoint", args.endpoint, "--requests", str(args.requests),
        "--serving" if serving else "--idle", *(["--no-access-log"] if args.no_access_log else []),
        "--concurrency", str(args.concurrency), *(["--db-url", args.db_url] if args.db_url else []),
    ]  # fmt: skip
    subprocess.run(command, env=env, check=True, capture_output=True)
    for line in out.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no total in {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--endpoint", choices=("ping", "purgeRequests", *POSTS), default="purgeRequests"
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--src", help="a src folder to measure instead of the installed package")
    parser.add_argument("--no-access-log", action="store_true")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="requests in flight at once (purgeCache: purges then share commits, as under load)",
    )
    parser.add_argument(
        "--db-url",
        default="",
        help="an empty PostgreSQL database to serve from instead of a fresh SQLite file (only "
        "this process is counted, not the database server's work)",
    )
    parser.add_argument(
        "--wall",
        action="store_true",
        help="wall-clock microseconds per request instead of instructions (ping, purgeRequests)",
    )
    parser.add_argument(
        "--memo-authenticate",
        action="store_true",
        help="--wall: verdicts answered from a dict after the first pass (what the signature "
        "check costs is the difference)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serving", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--idle", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        serve(
            args.endpoint,
            args.requests,
            args.serving,
            not args.no_access_log,
            args.concurrency,
            args.db_url,
        )
        return
    if args.memo_authenticate and not args.wall:
        parser.error("--memo-authenticate goes with --wall")
    if args.wall:
        if args.endpoint not in ("ping", "purgeRequests"):
            parser.error("--wall times ping and purgeRequests only")
        if args.src:  # timed in this process, which has imported purgecache already
            parser.error("--wall: put the other src first on PYTHONPATH instead of --src")
        micros = wall(args.endpoint, args.requests, not args.no_access_log, args.memo_authenticate)
        memo = ", authenticate from a dict" if args.memo_authenticate else ""
        log = "off" if args.no_access_log else "on"
        print(f"{args.endpoint} (access log {log}{memo}): {micros:.2f} µs/request")
        return
    idle, serving = callgrind_total(args, False), callgrind_total(args, True)
    per_request = (serving - idle) // args.requests
    log = "off" if args.no_access_log else "on"
    print(
        f"{args.endpoint} (access log {log}, concurrency {args.concurrency}): "
        f"{per_request:,} instructions/request"
    )


if __name__ == "__main__":
    main()

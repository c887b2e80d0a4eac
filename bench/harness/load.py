"""Driving one target with wrk: the endpoints, signed request files, one run and its figures.

Signed endpoints go through `lua/signed.lua`, which hands out prebuilt request strings read
from a file of distinct Hawk headers generated just before the run; ping goes through
`lua/static.lua` (wrk's fixed-request fast path). Both print wrk's counters as one JSON line.
"""

from __future__ import annotations

import json
import resource
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.fake_auth import FakeAuth
from harness.hawk import Bodies, BodyMaker, Credentials, Target, write_signed_file
from harness.procs import Started, cpu_seconds, main_thread_cpu_seconds
from harness.reports import ReportBodies

LUA = Path(__file__).parent / "lua"
MAX_SIGNED = 2_500_000  # request strings per file; LuaJIT (no GC64) holds about 1 GiB
NON_2XX_NOTE = "wrk counts status >= 400 (3xx would pass; the service sends none here)"


@dataclass(frozen=True)
class Endpoint:
    """One API call as wrk sends it to the service, and where nginx serves its twin."""

    name: str
    method: str
    target: str  # request target exactly as sent and signed (`%2F` stays encoded)
    nginx_path: str  # the decoded path nginx matches
    signed: bool
    status: int  # what the service must answer
    cache_name_prefix: str = ""  # POST: body {"cacheName":"<prefix>-<n>"}, n never repeats
    report_workers: int = 0  # POST: instead, reports of this many distinct workers in turn


@dataclass
class Run:
    """The figures of one wrk run against one target."""

    target: str  # "service" or "nginx"
    requests: int
    seconds: float
    rps: float
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int  # wrk's status errors: responses with status >= 400
    socket_errors: int
    loaded: int  # prebuilt requests in the file (0 for ping)
    handed: int  # requests wrk asked the script for
    reused: int  # requests sent a second time because the file ran out (must be 0 on the service)
    server_cpu_us_per_req: float
    client_cpu_us_per_req: float
    headers_file_seconds: float = 0.0  # time spent generating the signed headers (not measured)
    auth_calls: int = 0  # requests the fake auth service answered during the run (remote auth)
    auth_cpu_us_per_req: float = 0.0  # its CPU per service request (not in server_cpu_us_per_req)
    log_bytes: int = 0  # what the service wrote to its log file (stderr) during the run
    log_lines: int = 0
    instructions: int = 0  # callgrind's count for the run (`--log-cost`), 0 if not counted
    # The busiest main thread of the server's processes (granian's worker: the event loop's,
    # which runs all the Python): its share of the run's time, and its CPU per request.
    main_busy: float = 0.0
    main_us_per_req: float = 0.0
    raw: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class Wrk:
    """How wrk is run: binary, threads, connections, where files go."""

    binary: str
    threads: int
    connections: int
    workdir: Path

    def run(
        self,
        label: str,
        port: int,
        endpoint: Endpoint,
        seconds: float,
        server: Started,
        signed_file: Path | None,
        signed_host: str,
        connections: int | None = None,
        auth: FakeAuth | None = None,
    ) -> Run:
        """One wrk run of `seconds` against 127.0.0.1:port; CPU of `server`'s tree is metered,
        and so are the calls to and CPU of `auth`, the auth service it consults, if any."""
        connections = connections or self.connections
        argv = [
            self.binary, f"-t{self.threads}", f"-c{connections}", f"-d{seconds:g}s",
            "--latency", "--timeout", "10s",
        ]  # fmt: skip
        if endpoint.signed:
            assert signed_file is not None
            argv += ["-s", str(LUA / "signed.lua"), f"http://127.0.0.1:{port}/", "--"]
            argv += [str(signed_file), endpoint.method, endpoint.target, signed_host]
        else:
            argv += ["-s", str(LUA / "static.lua"), f"http://127.0.0.1:{port}{endpoint.target}"]
        tree = server.tree()
        auth_tree = auth.server.tree() if auth else []
        calls_before = auth.calls() if auth else 0
        auth_before = cpu_seconds(auth_tree)
        cpu_before = cpu_seconds(tree)
        mains_before = {pid: main_thread_cpu_seconds(pid) for pid in tree}
        client_before = _children_cpu()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 300)
        server_cpu = cpu_seconds(tree) - cpu_before
        main_cpu = max(
            (main_thread_cpu_seconds(pid) - before for pid, before in mains_before.items()),
            default=0.0,
        )
        client_cpu = _children_cpu() - client_before
        auth_cpu = cpu_seconds(auth_tree) - auth_before
        run = _parse(label, done, server_cpu, client_cpu)
        run.main_busy = main_cpu / run.seconds if run.seconds else 0.0
        run.main_us_per_req = main_cpu * 1e6 / max(run.requests, 1)
        if auth:
            run.auth_calls = auth.calls() - calls_before
            run.auth_cpu_us_per_req = auth_cpu * 1e6 / max(run.requests, 1)
        return run


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _parse(
    label: str, done: subprocess.CompletedProcess[str], server_cpu: float, client_cpu: float
) -> Run:
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
    data = json.loads(line[len("BENCH ") :])
    requests = int(data["requests"])
    seconds = data["duration_us"] / 1e6
    latency = data["latency_us"]
    errors = data["errors"]
    per_req = 1e6 / max(requests, 1)
    return Run(
        target=label,
        requests=requests,
        seconds=seconds,
        rps=requests / seconds if seconds else 0.0,
        mean_ms=latency["mean"] / 1000,
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        non_2xx=int(errors["status"]),
        socket_errors=sum(int(errors[k]) for k in ("connect", "read", "write", "timeout")),
        loaded=int(data["loaded"]),
        handed=int(data["handed"]),
        reused=int(data["reused"]),
        server_cpu_us_per_req=server_cpu * per_req,
        client_cpu_us_per_req=client_cpu * per_req,
        raw={"wrk": data, "stdout": done.stdout[-1500:]},
    )


class SignedFiles:
    """Fresh files of distinct signed requests, sized from the rate a target has shown so far."""

    def __init__(self, workdir: Path, credentials: Credentials) -> None:
        self.workdir = workdir
        self.credentials = credentials
        self.latest: dict[str, Path] = {}
        self.bodies: dict[str, Bodies] = {}  # one counter per endpoint: names never repeat

    def make(
        self, endpoint: Endpoint, port: int, rate: float, seconds: float
    ) -> tuple[Path, float]:
        """A file for `seconds` at up to 1.5x `rate` req/s (+10k spare), signed for the service
        at 127.0.0.1:port; returns it and the seconds generating it took. It replaces the
        endpoint's previous file."""
        count = min(int(rate * seconds * 1.5) + 10_000, MAX_SIGNED)
        path = self.workdir / f"signed-{endpoint.name}.txt"
        target = Target(endpoint.method, endpoint.target, "127.0.0.1", port)
        bodies = None
        if endpoint.method == "POST":
            if endpoint.name not in self.bodies:
                self.bodies[endpoint.name] = _bodies(endpoint)
            bodies = self.bodies[endpoint.name]
        spent = write_signed_file(path, self.credentials, target, count, bodies)
        self.latest[endpoint.name] = path
        return path, spent


def _bodies(endpoint: Endpoint) -> Bodies:
    """The POST bodies of `endpoint`, new ones for as long as the backend's run lasts."""
    if endpoint.report_workers:
        return ReportBodies(endpoint.report_workers, int(time.time() * 1000))
    return BodyMaker(endpoint.cache_name_prefix)

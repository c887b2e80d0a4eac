"""The measurements: service and nginx in alternation per endpoint, and the paging probes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from harness.fake_auth import FakeAuth
from harness.load import Endpoint, Run, SignedFiles, Wrk
from harness.procs import Started
from harness.reports import REPORT_WORKERS
from harness.seed import POOL, WRITE_POOL

API = "/api/purge-cache/v1"
REMOTE_AUTH = "purgeRequestsRemoteAuth"  # measured on a service started with --auth-root-url
FLOOR = "floor"  # granian replaying the service's answers (harness/floor.py)
REPORT = "reportWorkerSync"  # opt-in (`--endpoints`): not in the default set
FIRST_GUESS_RATE = 60_000.0  # req/s to size the very first warm-up file (about nginx's rate)

ENDPOINTS = {
    e.name: e
    for e in (
        Endpoint("ping", "GET", f"{API}/ping", f"{API}/ping", signed=False, status=200),
        Endpoint(
            "purgeRequests",
            "GET",
            f"{API}/purge-cache/{POOL.replace('/', '%2F')}",
            f"{API}/purge-cache/{POOL}",
            signed=True,
            status=200,
        ),
        Endpoint(  # the same request, to a service that asks the fake auth service
            REMOTE_AUTH,
            "GET",
            f"{API}/purge-cache/{POOL.replace('/', '%2F')}",
            f"{API}/purge-cache/{POOL}",
            signed=True,
            status=200,
        ),
        Endpoint(
            "allPurgeRequests",
            "GET",
            f"{API}/purge-cache/list?limit=1000",
            f"{API}/purge-cache/list",
            signed=True,
            status=200,
        ),
        Endpoint(
            "purgeCache",
            "POST",
            f"{API}/purge-cache/{WRITE_POOL.replace('/', '%2F')}",
            f"{API}/purge-cache/{WRITE_POOL}",
            signed=True,
            status=204,
            cache_name_prefix="bench",
        ),
        Endpoint(  # reports of REPORT_WORKERS distinct workers in turn (harness/reports.py)
            REPORT,
            "POST",
            f"{API}/ext/report/{POOL.replace('/', '%2F')}",
            f"{API}/ext/report/{POOL}",
            signed=True,
            status=204,
            report_workers=REPORT_WORKERS,
        ),
    )
}
DEFAULT_ENDPOINTS = [name for name in ENDPOINTS if name != REPORT]
WRITES_LAST = {"purgeCache": 1, REPORT: 2}  # writes grow tables: after every read, in this order


@dataclass
class Side:
    """One target of the comparison: a running server and its port."""

    label: str  # a service variant's label, "nginx", or a paging probe's name
    server: Started
    port: int
    signed_port: int  # requests carry `Host: 127.0.0.1:<this>` and are signed for it
    strict: bool  # the service: a fresh file per run, and no request string sent twice
    auth: FakeAuth | None = None  # the auth service it consults, metered beside it


@dataclass
class Plan:
    """How long and how often."""

    rounds: int
    seconds: float
    warmup: float


@dataclass
class Measured:
    """Every run of one endpoint (or probe), in the order they ran."""

    name: str
    runs: list[Run] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def of(self, label: str) -> list[Run]:
        return [run for run in self.runs if run.target == label]


class Bench:
    """Runs wrk against service and nginx; never sends a signed request string to the service
    twice (a run that would have is repeated once with a bigger file, then flagged)."""

    def __init__(self, wrk: Wrk, files: SignedFiles, say: Callable[..., None] = print) -> None:
        self.wrk = wrk
        self.files = files
        self.say = say
        self.rate: dict[tuple[str, str], float] = {}  # (endpoint, label) -> best req/s seen

    def _one(self, side: Side, endpoint: Endpoint, seconds: float, connections: int | None) -> Run:
        key = (endpoint.name, side.label)
        spent, path = 0.0, None
        if endpoint.signed:
            if side.strict or endpoint.name not in self.files.latest:
                rate = self.rate.get(key, FIRST_GUESS_RATE)
                path, spent = self.files.make(endpoint, side.signed_port, rate, seconds)
            else:  # nginx ignores Authorization: the service's latest file, cycled, does
                path = self.files.latest[endpoint.name]
        run = self.wrk.run(
            side.label,
            side.port,
            endpoint,
            seconds,
            side.server,
            path,
            f"127.0.0.1:{side.signed_port}",
            connections,
            side.auth,
        )
        run.headers_file_seconds = spent
        self.rate[key] = max(self.rate.get(key, 0.0), run.rps)
        return run

    def measured_run(
        self,
        side: Side,
        endpoint: Endpoint,
        plan: Plan,
        result: Measured,
        connections: int | None = None,
    ) -> Run:
        """Warm-up (which also calibrates the size of the next file), then the measured run."""
        if plan.warmup > 0:
            self._one(side, endpoint, plan.warmup, connections)
        run = self._logged_run(side, endpoint, plan.seconds, connections)
        if side.strict and run.reused:
            self.say(f"    ! {run.reused} requests reused a header: repeating with a bigger file")
            run = self._logged_run(side, endpoint, plan.seconds, connections)
            if run.reused:
                result.warnings.append(
                    f"{endpoint.name}: a service run reused {run.reused} signed requests"
                )
        result.runs.append(run)
        self.say(
            f"    {endpoint.name:<16} {side.label:<16} {run.rps:>9.0f} req/s  "
            f"p50 {run.p50_ms:6.2f} ms  p99 {run.p99_ms:6.2f} ms  non-2xx {run.non_2xx}  "
            f"socket errors {run.socket_errors}  cpu {run.server_cpu_us_per_req:5.0f} us/req  "
            f"main thread {run.main_busy:4.0%} {run.main_us_per_req:5.1f} us/req"
            + (f"  headers {run.loaded} (used {run.handed})" if endpoint.signed else "")
            + (f"  log lines/req {run.log_lines / max(run.requests, 1):.2f}" if side.strict else "")
            + (
                f"  auth calls/req {run.auth_calls / max(run.requests, 1):.2f} "
                f"auth cpu {run.auth_cpu_us_per_req:.0f} us/req"
                if side.auth
                else ""
            )
        )
        if run.non_2xx or run.socket_errors:
            result.warnings.append(
                f"{endpoint.name} on {side.label}: {run.non_2xx} non-2xx responses, "
                f"{run.socket_errors} socket errors"
            )
        return run

    def _logged_run(
        self, side: Side, endpoint: Endpoint, seconds: float, connections: int | None
    ) -> Run:
        """One run; for a service, what it wrote to its log file during the run (the file is
        emptied before and after, so a long sitting does not fill the disk)."""
        if not side.strict:
            return self._one(side, endpoint, seconds, connections)
        side.server.take_log()  # the warm-up's lines
        run = self._one(side, endpoint, seconds, connections)
        run.log_bytes, run.log_lines = side.server.take_log()
        return run

    def compare(self, endpoint: Endpoint, sides: list[Side], plan: Plan) -> Measured:
        """`plan.rounds` rounds of every side in turn (service variants and nginx), the order
        rotated by one each round so that no side always runs first."""
        result = Measured(endpoint.name)
        for round_index in range(plan.rounds):
            shift = round_index % len(sides)
            for side in sides[shift:] + sides[:shift]:
                self.measured_run(side, endpoint, plan, result)
        return result

    def probes(
        self, probes: list[tuple[str, Side, Endpoint]], plan: Plan, connections: int
    ) -> dict[str, Measured]:
        """Paging probes: each named (side, endpoint) in turn, `plan.rounds` rounds."""
        results = {name: Measured(name) for name, _, _ in probes}
        for round_index in range(plan.rounds):
            shift = round_index % len(probes)
            for name, side, endpoint in probes[shift:] + probes[:shift]:
                labelled = Side(name, side.server, side.port, side.signed_port, side.strict)
                self.measured_run(labelled, endpoint, plan, results[name], connections)
        return results

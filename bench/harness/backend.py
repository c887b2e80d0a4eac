"""One backend's whole run: data, service, nginx, the comparisons, paging, RSS, profiles."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import report, seed
from harness.client import Reply, ServiceClient
from harness.databases import BackendUnavailable, PostgresDatabases, SqliteDatabases
from harness.fake_auth import start_fake_auth, success_verdict
from harness.floor import start_floor
from harness.hawk import Credentials
from harness.load import Endpoint, SignedFiles, Wrk
from harness.measure import ENDPOINTS, FLOOR, REMOTE_AUTH, REPORT, Bench, Measured, Plan, Side
from harness.nginx import start_nginx
from harness.paging import list_target, walk_to_last_page
from harness.procs import Registry, Started, command_line, rss_kib
from harness.reports import ReportBodies, stored_workers, worker_id
from harness.service import (
    SCOPES,
    ServiceRefused,
    Variant,
    check_auth_is_on,
    check_remote_auth,
    start_service,
    write_clients_file,
)

Databases = SqliteDatabases | PostgresDatabases
PAGING_CONNECTIONS = 1  # one request at a time: the time per request is the latency
Say = Callable[..., None]


class BackendRun:
    """Everything measured on one backend, with the servers it started."""

    def __init__(
        self, args: argparse.Namespace, tools: dict[str, str], workdir: Path, say: Say
    ) -> None:
        self.args = args
        self.tools = tools
        self.workdir = workdir
        self.say = say
        self.registry = Registry()
        self.nginx: Started | None = None
        self.floor: Started | None = None
        self.answers: dict[tuple[str, str], Reply] = {}  # (method, decoded path) -> its answer
        self.service_sides: dict[str, Side] = {}  # endpoint -> the headline variant's side
        self.remote_sides: dict[str, Side] = {}  # variant label -> its remote-auth service
        self.clients_file = workdir / "clients.toml"
        self.result: dict[str, Any] = {
            "summaries": [],
            "log_costs": [],
            "floors": [],
            "measured": [],
            "rss": [],
            "notes": [],
        }

    def run(self, name: str, databases: Databases) -> dict[str, Any]:
        """Measure everything on this backend; the result dict for the report."""
        args, say = self.args, self.say
        variants: list[Variant] = args.variants
        self.result["backend"] = name
        self.result["variants"] = [v.label for v in variants]
        self._seed(name, databases)
        credentials = write_clients_file(self.clients_file)
        small: dict[str, str] = {}  # revision -> its small database
        services: dict[str, Side] = {}  # variant label -> its service
        for variant in variants:
            if variant.revision not in small:
                small[variant.revision] = self._small_database(databases, variant)
            started, port = self._start_service(
                f"service-{name}-{_slug(variant.label)}", small[variant.revision], variant
            )
            check_auth_is_on(port, credentials)
            services[variant.label] = Side(variant.label, started, port, port, strict=True)
        head = services[variants[0].label]
        bodies = self._fetch_bodies(head.port, credentials)
        nginx_port = 0
        if args.nginx:
            self.nginx, nginx_port = self._start_nginx(bodies)
            say(f"{name}: nginx pid {self.nginx.pid} on 127.0.0.1:{nginx_port}")
        floor_port = 0
        if args.floor:
            self._record_post_answer(head.port, credentials)
            self.floor, floor_port = start_floor(
                self.registry, self.workdir / "floor", self.answers
            )
            say(f"{name}: floor (granian, no app work) pid {self.floor.pid} on :{floor_port}")
        wrk = Wrk(self.tools["wrk"], args.threads, args.connections, self.workdir)
        bench = Bench(wrk, SignedFiles(self.workdir, credentials), say)
        plan = Plan(args.rounds, args.duration, args.warmup)
        for endpoint_name in args.endpoints:
            if endpoint_name == "purgeCache":  # always last: its writes grow the table
                self._paging(bench, databases, head, credentials)
            if ENDPOINTS[endpoint_name].method == "POST":
                for side in services.values():
                    self._check_post(side.port, credentials, endpoint_name)
            sides = [services[v.label] for v in variants]
            if endpoint_name == REMOTE_AUTH:
                sides = [self._remote_auth_side(v, small, credentials, bodies) for v in variants]
            self.service_sides[endpoint_name] = sides[0]
            if self.nginx is not None:
                # nginx ignores Authorization and Host: it gets the service's request strings
                sides.append(Side("nginx", self.nginx, nginx_port, sides[0].signed_port, False))
            if self.floor is not None:  # like nginx, it ignores what it is sent
                sides.append(Side(FLOOR, self.floor, floor_port, sides[0].signed_port, False))
            say(f"{name}: {endpoint_name}")
            measured = bench.compare(ENDPOINTS[endpoint_name], sides, plan)
            self.result["summaries"] += report.summarize(measured, name, variants)
            self.result["log_costs"] += report.log_costs(measured, name, variants)
            self.result["floors"] += report.floor_summary(measured, name, variants)
            self.result["measured"].append(measured)
            if endpoint_name == REPORT:
                self._count_reporters(small.get("", ""))
        if "purgeCache" not in args.endpoints:
            self._paging(bench, databases, head, credentials)
        servers = [side.server for side in services.values()]
        servers += [*filter(None, [self.nginx, self.floor]), *self._remote_auth_servers()]
        self._rss("end of run", servers)
        if args.profile:
            self._profile(bench)
        if args.log_cost and args.callgrind:
            from harness.instructions import count_instructions

            self.result["instructions"] = count_instructions(self, small, credentials)
        return self.result

    def _small_database(self, databases: Databases, variant: Variant) -> str:
        """The checkout's small database, or another revision's own, seeded by that revision
        (in a process that imports it) with its own schema."""
        if not variant.revision:
            return databases.small_url
        where, url = databases.new_small(_slug(variant.revision))
        bench_dir = str(self.args.bench_dir)
        env = dict(os.environ, PYTHONPATH=f"{variant.src}{os.pathsep}{bench_dir}")
        done = subprocess.run(
            [sys.executable, "-m", "harness.seed_cli", databases.name, where],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"seeding {variant.revision}'s database: {done.stderr[-800:]}")
        self.say(f"  {variant.revision}: its own small database ({done.stdout.strip()} rows)")
        return url

    def _seed(self, name: str, databases: Databases) -> None:
        now = seed.now_ms()
        self.say(f"{name}: seeding the 1,000-row database")
        self.result["small_rows"] = databases.seed_small(seed.small_rows(now))
        if self.args.no_paging:
            return
        self.say(f"{name}: seeding the {self.args.big_pools * 1000:,}-row database")
        started = time.perf_counter()
        self.result["big_rows"] = databases.seed_big(seed.big_rows(now, self.args.big_pools))
        spent = time.perf_counter() - started
        self.say(f"{name}: seeded {self.result['big_rows']:,} rows in {spent:.1f} s")

    def _start_service(
        self, label: str, db_url: str, variant: Variant | None = None
    ) -> tuple[Started, int]:
        variant = variant or self.args.variants[0]
        started, port = start_service(
            self.registry,
            label,
            self.workdir,
            db_url,
            self.clients_file,
            workers=self.args.workers,
            cache_time=self.args.cache_time,
            variant=variant,
        )
        self.say(f"{label}: pid {started.pid} on 127.0.0.1:{port} ({db_url}) [{variant.label}]")
        return started, port

    def _remote_auth_side(
        self,
        variant: Variant,
        small: dict[str, str],
        credentials: Credentials,
        bodies: dict[str, bytes],
    ) -> Side:
        """A service of this variant on the same database that asks the fake auth service for
        every verdict (started on first use, checked to consult it once per request)."""
        known = self.remote_sides.get(variant.label)
        if known is not None:
            return known
        verdict = success_verdict(credentials.client_id, SCOPES)
        label = f"service-{self.result['backend']}-remote-auth-{_slug(variant.label)}"
        auth = start_fake_auth(
            self.registry, self.tools["nginx"], self.workdir / f"auth-nginx-{label}", verdict
        )
        self.say(f"  fake auth nginx pid {auth.server.pid} on 127.0.0.1:{auth.port}")
        service, port = start_service(
            self.registry,
            label,
            self.workdir,
            small[variant.revision],
            self.clients_file,
            workers=self.args.workers,
            cache_time=self.args.cache_time,
            auth_root_url=auth.root_url,
            variant=variant,
        )
        self.say(
            f"{label}: pid {service.pid} on 127.0.0.1:{port} (--auth-root-url {auth.root_url})"
        )
        check_remote_auth(port, credentials, auth, bodies[ENDPOINTS[REMOTE_AUTH].nginx_path])
        side = Side(variant.label, service, port, port, strict=True, auth=auth)
        self.remote_sides[variant.label] = side
        return side

    def _remote_auth_servers(self) -> list[Started]:
        servers = []
        for side in self.remote_sides.values():
            servers.append(side.server)
            if side.auth is not None:
                servers.append(side.auth.server)
        return servers

    def _fetch_bodies(self, port: int, credentials: Credentials) -> dict[str, bytes]:
        """The service's own answers to the GETs, which nginx will serve byte for byte."""
        client = ServiceClient(port, credentials)
        bodies: dict[str, bytes] = {}
        sizes = self.result.setdefault("body_bytes", {})
        try:
            for endpoint in ENDPOINTS.values():
                if endpoint.method != "GET" or endpoint.nginx_path in bodies:
                    continue
                reply = client.request("GET", endpoint.target)
                if reply.status != endpoint.status:
                    raise RuntimeError(f"{endpoint.name}: {reply.status}: {reply.body[:300]!r}")
                bodies[endpoint.nginx_path] = reply.body
                self.answers["GET", endpoint.nginx_path] = reply
                sizes[endpoint.name] = len(reply.body)
        finally:
            client.close()
        listing = json.loads(bodies[ENDPOINTS["allPurgeRequests"].nginx_path])
        if len(listing["requests"]) != 1000 or "continuationToken" in listing:
            raise RuntimeError("allPurgeRequests?limit=1000 should be all 1,000 rows on one page")
        pool = json.loads(bodies[ENDPOINTS["purgeRequests"].nginx_path])
        if len(pool["requests"]) != len(seed.POOL_CACHE_NAMES):
            raise RuntimeError(f"purgeRequests: {len(pool['requests'])} requests, wanted 5")
        self.say(f"  response bodies (bytes): {sizes}")
        return bodies

    def _record_post_answer(self, port: int, credentials: Credentials) -> None:
        """The service's 204 to a purge, the floor's answer to every POST path (a purge of a
        cache of its own: the listings the other answers came from are already recorded)."""
        client = ServiceClient(port, credentials)
        try:
            target = ENDPOINTS["purgeCache"].target
            reply = client.request("POST", target, b'{"cacheName":"bench-floor-answer"}')
        finally:
            client.close()
        if reply.status != 204:
            raise RuntimeError(f"purgeCache for the floor: {reply.status}: {reply.body[:300]!r}")
        for endpoint in ENDPOINTS.values():
            if endpoint.method == "POST":
                self.answers["POST", endpoint.nginx_path] = reply

    def _start_nginx(self, bodies: dict[str, bytes]) -> tuple[Started, int]:
        """nginx with those bodies; checked to answer every endpoint as the service does."""
        nginx_dir = self.workdir / "nginx"
        nginx_dir.mkdir(exist_ok=True)
        posts = [e.nginx_path for e in ENDPOINTS.values() if e.method == "POST"]
        nginx, port = start_nginx(self.registry, self.tools["nginx"], nginx_dir, bodies, posts)
        client = ServiceClient(port, None)
        try:  # the very request targets the service gets, `%2F` included
            for endpoint in ENDPOINTS.values():
                body = b"{}" if endpoint.method == "POST" else None
                reply = client.request(endpoint.method, endpoint.target, body)
                want = bodies.get(endpoint.nginx_path, b"")
                if reply.status != endpoint.status or reply.body != want:
                    raise RuntimeError(
                        f"nginx answers {endpoint.name} with {reply.status}, {len(reply.body)} "
                        f"bytes; wanted {endpoint.status}, {len(want)} bytes"
                    )
        finally:
            client.close()
        return nginx, port

    def _check_post(self, port: int, credentials: Credentials, endpoint_name: str) -> None:
        """One signed POST of the endpoint is accepted (204); for reportWorkerSync, a report
        of a worker outside the client's `bench/*` scope is refused (403): the scope is
        checked per worker."""
        target = ENDPOINTS[endpoint_name].target
        checks = [(b'{"cacheName":"bench-preflight"}', 204)]
        if endpoint_name == REPORT:
            report = ReportBodies(1, 0).body(worker_id(0), "2000-01-01T00:00:00.000Z")
            checks = [(json.dumps(report).encode(), 204)]
            report["workerGroup"] = "elsewhere"
            checks.append((json.dumps(report).encode(), 403))
        client = ServiceClient(port, credentials)
        try:
            for body, status in checks:
                reply = client.request("POST", target, body)
                if reply.status != status:
                    raise RuntimeError(
                        f"{endpoint_name} preflight: {reply.status} (wanted {status}): "
                        f"{reply.body[:300]!r}"
                    )
        finally:
            client.close()

    def _count_reporters(self, db_url: str) -> None:
        """Note how many distinct workers the checkout's database holds receipts of."""
        if not db_url:
            return
        workers, receipts = stored_workers(db_url)
        note = f"reportWorkerSync: {workers:,} distinct workers stored ({receipts:,} receipts)"
        self.say(f"  {note}")
        self.result["notes"].append(note)

    def _paging(
        self, bench: Bench, databases: Databases, small: Side, credentials: Credentials
    ) -> None:
        """allPurgeRequests: the last page of the big table vs the first page of the small one."""
        if self.args.no_paging:
            return
        big, big_port = self._start_service(
            f"service-{self.result['backend']}-big", databases.big_url
        )
        self.say("  walking the big table's pages to the last one")
        token, pages, rows, seconds = walk_to_last_page(big_port, credentials)
        self.say(f"  walked {pages} pages ({rows:,} rows) in {seconds:.1f} s")
        self.result["walk"] = {"pages": pages, "rows": rows, "seconds": seconds}
        size = f"{rows / 1e6:g}M" if rows >= 1_000_000 else f"{rows // 1000}k"
        big_side = Side("big", big, big_port, big_port, strict=True)
        first_small = _probe("page-first-small", list_target(1000))
        last_big = _probe("page-last-big", list_target(1000, token))
        first_big = _probe("page-first-big", list_target(1000))
        probes = [
            ("first page, 1k-row table", small, first_small),
            (f"last page, {size}-row table", big_side, last_big),
            (f"first page, {size}-row table", big_side, first_big),
        ]
        plan = Plan(self.args.rounds, self.args.paging_duration, min(self.args.warmup, 1.0))
        measured = bench.probes(probes, plan, PAGING_CONNECTIONS)
        summary = report.paging_summary(measured)
        last, first = summary[probes[1][0]], summary[probes[0][0]]
        ratios = {key: last[key] / first[key] for key in report.PAGING_RATIO_KEYS}
        self.result["paging"] = {"probes": summary, "ratios": ratios, "table": size}
        self.result["paging_measured"] = list(measured.values())
        self.say(
            f"  last page {size} / first page 1k: p50 {last['p50_ms']:.2f} / "
            f"{first['p50_ms']:.2f} ms = {ratios['p50_ms']:.2f}x; CPU per request "
            f"{ratios['server_cpu_us_per_req']:.2f}x"
        )
        self._rss(f"after the {size}-row run", [big, small.server, *filter(None, [self.nginx])])
        self.registry.stop(big)

    def _rss(self, moment: str, servers: list[Started]) -> None:
        for server in servers:
            for index, pid in enumerate(server.tree()):
                if server.name == FLOOR:
                    role = "floor (granian supervisor)" if index == 0 else "floor (worker)"
                elif server.name == "nginx":
                    role = "nginx (single process)"
                elif server.name == "auth-nginx":
                    role = "fake auth nginx (single process)"
                else:
                    role = "granian supervisor" if index == 0 else "granian worker (forked)"
                row = {"backend": self.result["backend"], "moment": moment, "server": server.name}
                row |= {"pid": pid, "role": role, "rss_kib": rss_kib(pid)}
                self.result["rss"].append(row | {"cmdline": command_line(pid)[:200]})

    def _profile(self, bench: Bench) -> None:
        """One extra run per endpoint with py-spy sampling granian's worker."""
        from harness import profiling
        from harness.install import ensure_py_spy

        py_spy = ensure_py_spy(self.args.bench_dir / ".venv-tools")
        folder = self.args.results / f"{self.args.stamp}-profiles"
        folder.mkdir(parents=True, exist_ok=True)
        profiles = self.result["profiles"] = {}
        for endpoint_name in self.args.endpoints:
            svc = self.service_sides[endpoint_name]
            worker = profiling.busiest_worker(svc.server.tree())
            out = folder / f"{self.result['backend']}-{endpoint_name}.folded"
            self.say(f"  py-spy on worker {worker} during {endpoint_name}")
            recorder = profiling.start_recording(py_spy, worker, self.args.duration, out)
            plan = Plan(1, self.args.duration, 0)
            bench.measured_run(svc, ENDPOINTS[endpoint_name], plan, Measured("profile"))
            _, err = recorder.communicate(timeout=120)
            if not out.exists():
                self.result["notes"].append(f"py-spy failed on {endpoint_name}: {err[-300:]!r}")
                continue
            profiles[endpoint_name] = {"summary": profiling.summarize(out), "folded": str(out)}


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label).strip("-")


def _probe(name: str, target: str) -> Endpoint:
    return Endpoint(name, "GET", target, "", signed=True, status=200)


def run_backend(
    name: str, args: argparse.Namespace, tools: dict[str, str], workdir: Path, say: Say
) -> dict[str, Any]:
    """One backend from seeding to cleanup; a `skipped` result when it cannot run here."""
    backend_dir = workdir / name
    backend_dir.mkdir()
    databases: Databases | None = None
    runner = BackendRun(args, tools, backend_dir, say)
    try:
        if name == "sqlite":
            databases = SqliteDatabases(backend_dir)
        else:
            databases = PostgresDatabases(args.db, args.bench_dir.parent)
        return runner.run(name, databases)
    except (BackendUnavailable, ServiceRefused, ValueError) as error:
        say(f"{name}: SKIPPED: {error}")
        return {"backend": name, "skipped": str(error)}
    finally:
        runner.registry.stop_all()
        if databases is not None:
            databases.drop()

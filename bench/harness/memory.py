"""`bench/memory`: the service's memory (and latency) under a long mixed load (issue 17 item 6).

Per backend: a fresh `purgecache serve` on the 1,000-row database, a warm-up, then two
back-to-back minutes of the same load, 200 connections of distinct Hawk-signed requests mixed
as a fleet sends them: `purgeRequests` GETs over many pools, `purgeCache` POSTs, a few
listings. RSS of every process of the service's tree is read at start, after the warm-up, and
after each minute (and sampled every second for the peak). With `--tracemalloc` the worker
also writes tracemalloc snapshots at those moments (`purgecache.memtrace`), and the summary
lists the biggest differences between them. See bench/README.md, "Memory under load".
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import seed
from harness.databases import BackendUnavailable, PostgresDatabases, SqliteDatabases
from harness.hawk import Credentials, Signer, Target, fresh_nonce, payload_hash
from harness.install import ensure_debian_tools
from harness.load import _parse
from harness.procs import Registry, Started, cpu_seconds, rss_kib
from harness.sched import autogroup_off
from harness.service import SCOPES as BENCH_SCOPES
from harness.service import ServiceRefused, check_auth_is_on, start_service, write_clients_file

API = "/api/purge-cache/v1"
LUA = Path(__file__).parent / "lua"
BENCH_DIR = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
TRACE_ENV = "PURGECACHE_TRACEMALLOC"  # purgecache.memtrace.ENVIRONMENT_VARIABLE
CACHE_NAMES = 16  # purges name one of these per pool: the table stops growing (updates)
MIB = 1024
# What the load's client may do: the harness's worker-like scopes, its purge-cache ones widened
# to every pool of the mix (proj-...).
SCOPES = (
    *(scope for scope in BENCH_SCOPES if not scope.startswith("purge-cache:")),
    "purge-cache:purge-requests::proj-*",
    "purge-cache:proj-*",
    "purge-cache:all-purge-requests",
)


def say(*parts: object) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, flush=True)


@dataclass(frozen=True)
class Mix:
    """Per 100 requests: GETs of pools, POSTs, listings."""

    gets: int
    posts: int
    lists: int
    pools: int  # distinct pools named by GETs and POSTs

    @classmethod
    def parse(cls, text: str, pools: int) -> Mix:
        gets, posts, lists = (int(part) for part in text.split(","))
        if gets + posts + lists != 100 or min(gets, posts, lists) < 0:
            raise ValueError("--mix: three whole percentages adding up to 100")
        return cls(gets, posts, lists, pools)


def pool_ids(count: int) -> list[str]:
    """The seeded pools (200: `seed.POOL` and 199 of 5 requests each), then empty ones."""
    seeded = sorted({row[0] for row in seed.small_rows(0)})
    extra = [f"proj-mem-{index:04d}/workers" for index in range(max(0, count - len(seeded)))]
    return (seeded + extra)[:count]


def mixed_lines(
    credentials: Credentials, port: int, mix: Mix, count: int, rng: random.Random
) -> Iterator[str]:
    """`count` lines for lua/mixed.lua: `METHOD\\tTARGET\\tAuthorization\\tbody`."""
    pools = [pool.replace("/", "%2F") for pool in pool_ids(mix.pools)]
    signers: dict[tuple[str, str], Signer] = {}
    empty = payload_hash("", b"")
    ts = int(time.time())
    for index in range(count):
        if index % 4096 == 0:
            ts = int(time.time())
        roll = rng.randrange(100)
        body = ""
        if roll < mix.gets:
            method, target = "GET", f"{API}/purge-cache/{rng.choice(pools)}"
        elif roll < mix.gets + mix.posts:
            method, target = "POST", f"{API}/purge-cache/{rng.choice(pools)}"
            body = f'{{"cacheName":"mem-cache-{rng.randrange(CACHE_NAMES):02d}"}}'
        else:
            method, target = "GET", f"{API}/purge-cache/list?limit=1000"
        signer = signers.get((method, target))
        if signer is None:
            signer = signers[(method, target)] = Signer(
                credentials, Target(method, target, "127.0.0.1", port)
            )
        payload = payload_hash("application/json", body.encode()) if body else empty
        yield f"{method}\t{target}\t{signer(ts, fresh_nonce(), payload)}\t{body}"


def write_mixed_file(
    path: Path, credentials: Credentials, port: int, mix: Mix, count: int, seed_value: int
) -> float:
    started = time.perf_counter()
    with path.open("w", encoding="ascii") as out:
        for line in mixed_lines(credentials, port, mix, count, random.Random(seed_value)):
            out.write(line + "\n")
    return time.perf_counter() - started


@dataclass
class Sampler:
    """RSS of a process tree every second while a load runs (for the peak)."""

    server: Started
    peaks: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for pid in self.server.tree():
                kib = rss_kib(pid) or 0
                self.peaks[pid] = max(self.peaks.get(pid, 0), kib)


def smaps(pid: int) -> dict[str, int]:
    """/proc/<pid>/smaps_rollup in KiB: what the RSS is made of."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            key, value = line.split(":", 1)
            out[key] = int(value.split()[0])
    except (OSError, ValueError):
        pass
    return out


def rss_row(server: Started, moment: str) -> list[dict[str, Any]]:
    rows = []
    for index, pid in enumerate(server.tree()):
        parts = smaps(pid)
        rows.append(
            {
                "moment": moment,
                "pid": pid,
                "role": "supervisor" if index == 0 else "worker",
                "rss_kib": rss_kib(pid),
                "anonymous_kib": parts.get("Anonymous", 0),
                "file_kib": parts.get("Rss", 0) - parts.get("Anonymous", 0),
            }
        )
    return rows


class MemoryRun:
    """One backend: seed, start, warm up, two minutes, with RSS (and snapshots) between."""

    def __init__(self, args: argparse.Namespace, wrk: str, workdir: Path) -> None:
        self.args = args
        self.wrk = wrk
        self.workdir = workdir
        self.registry = Registry()
        self.mix = Mix.parse(args.mix, args.pools)
        self.result: dict[str, Any] = {"rss": [], "runs": [], "snapshots": {}, "peaks": {}}

    def run(self, name: str, databases: SqliteDatabases | PostgresDatabases) -> dict[str, Any]:
        args = self.args
        self.result["backend"] = name
        say(f"{name}: seeding the 1,000-row database")
        databases.seed_small(seed.small_rows(seed.now_ms()))
        credentials = write_clients_file(self.workdir / "clients.toml", SCOPES)
        trace_dir = self.workdir / "tracemalloc"
        server, port = start_service(
            self.registry, f"memory-{name}", self.workdir, databases.small_url,
            self.workdir / "clients.toml", workers=args.workers, cache_time=args.cache_time,
            variant=_variant(args),
            extra_env={TRACE_ENV: str(trace_dir)} if args.tracemalloc else None,
        )  # fmt: skip
        check_auth_is_on(port, credentials)
        say(f"{name}: service pid {server.pid} on 127.0.0.1:{port}")
        time.sleep(1.0)
        self._moment(server, "started (idle)")
        rate, seed_value = args.first_rate, 1
        phases = [("warm-up", args.warmup)] + [
            (f"minute {n}", args.seconds) for n in range(1, args.phases + 1)
        ]
        files = []
        for label, seconds in phases:  # all made before the load: no pause between minutes
            count = int(rate * seconds * 1.5) + 10_000
            path = self.workdir / f"mixed-{len(files)}.txt"
            spent = write_mixed_file(path, credentials, port, self.mix, count, seed_value)
            say(f"  {label}: {count:,} signed requests written in {spent:.1f} s")
            files.append(path)
            seed_value += 1
            if label == "warm-up":  # calibrate the minutes' files on the warm-up's rate
                run = self._load(server, port, label, seconds, files[0])
                rate = max(run["rps"], 100.0)
                self._moment(server, "after warm-up")
        with Sampler(server) as sampler:
            for (label, seconds), path in zip(phases[1:], files[1:], strict=True):
                self._load(server, port, label, seconds, path)
                self._moment(server, f"after {label}")
        self.result["peaks"] = {str(pid): kib for pid, kib in sampler.peaks.items()}
        if args.tracemalloc:
            self.result["snapshots"] = compare_snapshots(trace_dir)
        self.result["log_tail"] = server.log_tail(3)
        return self.result

    def _load(self, server: Started, port: int, label: str, seconds: float, path: Path) -> dict:
        argv = [
            self.wrk, "-t1", f"-c{self.args.connections}", f"-d{seconds:g}s", "--latency",
            "--timeout", "10s", "-s", str(LUA / "mixed.lua"), f"http://127.0.0.1:{port}/",
            "--", str(path), f"127.0.0.1:{port}",
        ]  # fmt: skip
        tree = server.tree()
        cpu = cpu_seconds(tree)
        server.take_log()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 300)
        parsed = _parse(label, done, cpu_seconds(tree) - cpu, 0.0)
        routes = route_latencies(server.log)
        _, log_lines = server.take_log()
        run = parsed.as_dict() | {"label": label, "log_lines": log_lines, "routes": routes}
        run.pop("raw", None)
        self.result["runs"].append(run)
        for route, r in sorted(routes.items()):
            say(f"      {route:<18} {r['count']:>8,}  in-app p50 {r['p50_ms']:.2f} ms  p99 "
                f"{r['p99_ms']:.2f} ms  max {r['max_ms']:.1f} ms")  # fmt: skip
        say(
            f"    {label:<10} {run['rps']:>7.0f} answers/s  p50 {run['p50_ms']:7.2f} ms  "
            f"p90 {run['p90_ms']:7.2f}  p99 {run['p99_ms']:7.2f}  max {run['max_ms']:7.1f}  "
            f"non-2xx {run['non_2xx']}  socket errors {run['socket_errors']}  "
            f"cpu {run['server_cpu_us_per_req']:.0f} us/req  reused {run['reused']}"
        )
        return run

    def _moment(self, server: Started, moment: str) -> None:
        rows = rss_row(server, moment)
        self.result["rss"] += rows
        shown = ", ".join(f"{r['role']} {r['rss_kib'] / MIB:.1f} MiB" for r in rows)
        say(f"  RSS {moment}: {shown}")
        if self.args.tracemalloc:
            for row in rows[1:]:  # the workers
                os.kill(row["pid"], signal.SIGUSR1)
            time.sleep(2.0 if self.args.tracemalloc else 0)


def route_latencies(log: Path) -> dict[str, dict[str, float]]:
    """Per route, from the access log (`duration_ms`: from the request reaching the app to
    its answer, so without the wait in granian and the kernel): count, p50, p99, max."""
    durations: dict[str, list[float]] = {}
    try:
        with log.open("rb") as lines:
            for line in lines:
                if b'"event":"request"' not in line:
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                durations.setdefault(entry["route"], []).append(float(entry["duration_ms"]))
    except OSError:
        return {}
    out = {}
    for route, values in durations.items():
        values.sort()
        out[route] = {
            "count": len(values),
            "p50_ms": _quantile(values, 0.5),
            "p99_ms": _quantile(values, 0.99),
            "max_ms": values[-1],
        }
    return out


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def compare_snapshots(folder: Path, top: int = 15) -> dict[str, Any]:
    """Per worker: its facts at each moment and the biggest growths between its snapshots."""
    out: dict[str, Any] = {}
    dumps = sorted(folder.glob("*.tracemalloc"), key=lambda p: [int(x) for x in p.stem.split("-")])
    by_pid: dict[str, list[Path]] = {}
    for path in dumps:
        by_pid.setdefault(path.stem.split("-")[0], []).append(path)
    for pid, paths in by_pid.items():
        facts = [json.loads(p.with_suffix(".json").read_text()) for p in paths]
        snaps = [tracemalloc.Snapshot.load(str(p)) for p in paths]
        ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
        snaps = [s.filter_traces(ignore) for s in snaps]
        diffs = {}
        for first, second in ((0, 1), (1, len(snaps) - 1), (len(snaps) - 2, len(snaps) - 1)):
            if second <= first:
                continue
            stats = snaps[second].compare_to(snaps[first], "lineno")[:top]
            diffs[f"{first}->{second}"] = [
                {"where": str(s.traceback[0]), "size_diff": s.size_diff, "size": s.size,
                 "count_diff": s.count_diff}
                for s in stats
            ]  # fmt: skip
        tops = snaps[-1].statistics("lineno")[:top]
        out[pid] = {
            "facts": facts,
            "diffs": diffs,
            "top_at_end": [{"where": str(s.traceback[0]), "size": s.size} for s in tops],
        }
    return out


def _variant(args: argparse.Namespace) -> Any:
    from harness.service import Variant

    return Variant("default", not args.no_access_log)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/memory", description=__doc__)
    add = p.add_argument
    add("--backends", default="sqlite,postgres", help="sqlite,postgres")
    add("--db", default=os.environ.get("PURGECACHE_BENCH_POSTGRES", DEFAULT_POSTGRES))
    add("--connections", type=int, default=200, help="wrk -c (200)")
    add("--seconds", type=float, default=60, help="seconds per measured phase (60)")
    add("--phases", type=int, default=2, help="measured phases back to back (2)")
    add("--warmup", type=float, default=15, help="seconds of warm-up (15)")
    add("--mix", default="72,25,3", help="percent GETs of pools, POSTs, listings (72,25,3)")
    add("--pools", type=int, default=1000, help="distinct pools in the mix (1000)")
    add("--first-rate", type=float, default=6000, help="req/s to size the warm-up file")
    add("--workers", type=int, default=1)
    add("--cache-time", default="10s")
    add("--no-access-log", action="store_true")
    add("--tracemalloc", action="store_true", help="tracemalloc snapshots in the worker")
    add("--results", type=Path, default=BENCH_DIR / "results")
    add("--keep", action="store_true", help="keep the work directory")
    args = p.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    return args


def markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        f"# bench/memory {meta['started']} ({meta['checkout']})",
        "",
        f"`{meta['command']}`",
        "",
    ]
    for result in results:
        if "skipped" in result:
            lines += [f"{result['backend']}: skipped: {result['skipped']}", ""]
            continue
        lines += [f"## {result['backend']}", "", "| moment | supervisor MiB | worker MiB |",
                  "|---|---:|---:|"]  # fmt: skip
        moments: dict[str, dict[str, float]] = {}
        for row in result["rss"]:
            moments.setdefault(row["moment"], {})[row["role"]] = (row["rss_kib"] or 0) / MIB
        for moment, roles in moments.items():
            lines.append(
                f"| {moment} | {roles.get('supervisor', 0):.1f} | {roles.get('worker', 0):.1f} |"
            )
        peaks = ", ".join(f"{kib / MIB:.1f}" for kib in result["peaks"].values())
        lines += [
            "",
            f"Peak RSS sampled each second (MiB, per process): {peaks}",
            "",
            "| phase | answers/s | p50 ms | p90 ms | p99 ms | max ms | non-2xx | socket errors "
            "| CPU µs/answer |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for run in result["runs"]:
            lines.append(
                f"| {run['label']} | {run['rps']:,.0f} | {run['p50_ms']:.2f} | {run['p90_ms']:.2f}"
                f" | {run['p99_ms']:.2f} | {run['max_ms']:.1f} | {run['non_2xx']} | "
                f"{run['socket_errors']} | {run['server_cpu_us_per_req']:.0f} |"
            )
        lines += ["", "In the app (access log `duration_ms`), per route: count, p50 / p99 ms", ""]
        for run in result["runs"]:
            shown = "; ".join(
                f"{route} {r['count']:,} {r['p50_ms']:.2f} / {r['p99_ms']:.2f}"
                for route, r in sorted(run.get("routes", {}).items())
            )
            lines.append(f"- {run['label']}: {shown}")
        for pid, snap in result.get("snapshots", {}).items():
            lines += ["", f"tracemalloc, worker {pid}:", ""]
            for index, fact in enumerate(snap["facts"]):
                lines.append(f"- snapshot {index}: {json.dumps(fact)}")
            for span, stats in snap["diffs"].items():
                lines += ["", f"growth {span}:", ""]
                lines += [f"- {s['size_diff'] / 1024:+.0f} KiB ({s['count_diff']:+d}) {s['where']}"
                          for s in stats]  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    checkout = subprocess.run(
        ["git", "-C", str(BENCH_DIR.parent), "describe", "--always", "--dirty"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    meta = {"started": started, "checkout": checkout, "command": " ".join(["bench/memory", *argv])}
    limit = len(args.backends) * (args.warmup + args.phases * args.seconds + 240) + 300
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt("time")))
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt("TERM")))
    signal.alarm(int(limit))
    workdir = Path(tempfile.mkdtemp(prefix="pcbench-memory-"))
    say(f"work directory {workdir}; at most {limit / 60:.0f} min")
    results = []
    try:
        tools = ensure_debian_tools()
        with autogroup_off(True) as scheduling:
            say(scheduling)
            for name in args.backends:
                results.append(run_backend(name, args, tools["wrk"], workdir))
    except KeyboardInterrupt as error:
        say(f"interrupted ({error}); servers stopped")
        return 130
    finally:
        signal.alarm(0)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    text = markdown(results, meta)
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"memory-{started}.md"
    path.write_text(text)
    path.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=1, default=str)
    )
    print("\n" + text)
    say(f"written {path}")
    return 0


def run_backend(name: str, args: argparse.Namespace, wrk: str, workdir: Path) -> dict[str, Any]:
    backend_dir = workdir / name
    backend_dir.mkdir()
    runner = MemoryRun(args, wrk, backend_dir)
    databases: SqliteDatabases | PostgresDatabases | None = None
    try:
        if name == "sqlite":
            databases = SqliteDatabases(backend_dir)
        else:
            databases = PostgresDatabases(args.db, BENCH_DIR.parent)
        return runner.run(name, databases)
    except (BackendUnavailable, ServiceRefused, ValueError) as error:
        say(f"{name}: SKIPPED: {error}")
        return {"backend": name, "skipped": str(error)}
    finally:
        runner.registry.stop_all()
        if databases is not None:
            databases.drop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

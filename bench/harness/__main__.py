"""`bench/run`: the purgecache service beside nginx under wrk, per backend (bench/README.md)."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import purgecache
from harness import report
from harness.backend import run_backend
from harness.install import InstallError, ensure_debian_tools
from harness.measure import DEFAULT_ENDPOINTS, ENDPOINTS, WRITES_LAST
from harness.sched import autogroup_off
from harness.service import Variant

LOG_COST_ENDPOINTS = "ping,purgeRequests,purgeCache"
LOG_COST_ROUNDS = 5  # issue 12: the median of at least 5 alternating rounds

BENCH_DIR = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def say(*parts: object) -> None:
    """A progress line with the time."""
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    add = p.add_argument
    add("--rounds", type=int, help="service/nginx pairs per endpoint (3; --quick 1)")
    add("--duration", type=float, help="seconds per measured run (15; --quick 3)")
    add("--warmup", type=float, help="seconds of warm-up before each run (2; --quick 1)")
    add("--connections", type=int, default=32, help="wrk -c (32)")
    add("--threads", type=int, default=1, help="wrk -t (1)")
    add("--backends", help="sqlite,postgres (--log-cost: sqlite)")
    add(
        "--db",
        default=os.environ.get("PURGECACHE_BENCH_POSTGRES", DEFAULT_POSTGRES),
        help="PostgreSQL server URL; the harness creates (and drops) two databases there "
        f"(default $PURGECACHE_BENCH_POSTGRES or {DEFAULT_POSTGRES})",
    )
    add(
        "--endpoints",
        help=f"any of {','.join(ENDPOINTS)} (default {','.join(DEFAULT_ENDPOINTS)}; --log-cost: "
        f"{LOG_COST_ENDPOINTS}); the writes purgeCache and then reportWorkerSync run last",
    )
    add("--workers", type=int, default=1, help="purgecache serve --workers (1)")
    add("--cache-time", default="10s", help="purgecache serve --cache-time (10s)")
    add("--paging-duration", type=float, help="seconds per paging probe (5; --quick 2)")
    add("--big-pools", type=int, default=1000, help="the big table: pools x 1000 rows")
    add("--no-paging", action="store_true", help="skip the 1M-row paging test")
    add(
        "--no-floor",
        dest="floor",
        action="store_false",
        help="skip the floor: granian replaying the service's answers with no app work, "
        "measured beside nginx (harness/floor.py)",
    )
    add(
        "--access-log",
        choices=("both", "on", "off"),
        default="both",
        help="service configurations per endpoint: the default one (access log on, the "
        "headline) and/or --no-access-log (both)",
    )
    add(
        "--compare",
        metavar="REV",
        help="also measure the service at git revision REV (exported next to the checkout), "
        "its runs alternating with the checkout's in every round",
    )
    add(
        "--log-cost",
        action="store_true",
        help="what the access log costs: log on vs off, no nginx, no paging, 5 rounds, "
        f"endpoints {LOG_COST_ENDPOINTS}, sqlite; then instructions/request under callgrind",
    )
    add("--cg-rounds", type=int, default=2, help="--log-cost: callgrind rounds (2)")
    add("--cg-seconds", type=float, default=8, help="--log-cost: seconds per callgrind run (8)")
    add("--no-callgrind", dest="callgrind", action="store_false", help="--log-cost: no callgrind")
    add("--quick", action="store_true", help="1 round, 3 s runs: a smoke test")
    add("--profile", action="store_true", help="also py-spy the worker during each endpoint")
    add("--results", type=Path, default=BENCH_DIR / "results", help="output folder")
    add("--keep", action="store_true", help="keep the work directory (logs, request files)")
    add(
        "--keep-autogroup",
        action="store_true",
        help="leave the kernel's autogroup scheduling as it is (see harness/sched.py)",
    )
    add("--time-limit", type=float, help="minutes before giving up (2 x estimate + 10)")
    args = p.parse_args(argv)
    quick = args.quick
    if args.log_cost:
        args.access_log = "both"
        args.no_paging = True
        args.backends = args.backends or "sqlite"
        args.endpoints = args.endpoints or LOG_COST_ENDPOINTS
        args.rounds = args.rounds or LOG_COST_ROUNDS
    args.nginx = not args.log_cost
    args.floor = args.floor and args.nginx
    args.backends = args.backends or "sqlite,postgres"
    args.endpoints = args.endpoints or ",".join(DEFAULT_ENDPOINTS)
    args.rounds = args.rounds or (1 if quick else 3)
    args.duration = args.duration or (3.0 if quick else 15.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if quick else 2.0)
    args.paging_duration = args.paging_duration or (2.0 if quick else 5.0)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    if set(args.backends) - {"sqlite", "postgres"} or set(endpoints) - set(ENDPOINTS):
        p.error(f"unknown backend or endpoint in {args.backends} {endpoints}")
    args.endpoints = sorted(endpoints, key=lambda e: WRITES_LAST.get(e, 0))
    args.bench_dir = BENCH_DIR
    args.variants = []  # filled in by main (a --compare revision is exported first)
    return args


def variants(access_log: str, revision: str = "", src: str = "") -> list[Variant]:
    """The service configurations measured per endpoint; the first is the headline."""
    prefix = f"{revision} " if revision else ""
    out = []
    if access_log in ("both", "on"):
        out.append(Variant(f"{prefix}default", True, revision, src))
    if access_log in ("both", "off"):
        out.append(Variant(f"{prefix}--no-access-log", False, revision, src))
    return out


def export_revision(rev: str, workdir: Path) -> tuple[str, str]:
    """`git archive <rev> src` into the work directory: the short commit and its src."""
    repo = str(BENCH_DIR.parent)
    short = subprocess.run(
        ["git", "-C", repo, "rev-parse", "--short", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    folder = workdir / f"rev-{short}"
    folder.mkdir()
    archive = subprocess.Popen(["git", "-C", repo, "archive", short, "src"], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(folder)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise RuntimeError(f"git archive {rev} failed")
    return short, str(folder / "src")


def estimate_seconds(args: argparse.Namespace) -> float:
    """Rough wall-clock time of the whole run."""
    per_run = args.duration + args.warmup + 6
    sides = (2 if args.access_log == "both" else 1) * (2 if args.compare else 1) + args.nginx
    sides += args.floor
    throughput = len(args.endpoints) * args.rounds * sides * per_run
    paging = 0.0
    if not args.no_paging:
        paging = 90 + 3 * args.rounds * (args.paging_duration + args.warmup + 4)
    profile = len(args.endpoints) * (args.duration + 10) if args.profile else 0
    callgrind = 0.0
    if args.log_cost and args.callgrind:
        callgrind = (sides - args.nginx - args.floor) * (
            180 + len(args.endpoints) * args.cg_rounds * (args.cg_seconds + args.warmup + 10)
        )
    return float(len(args.backends) * (throughput + paging + profile + callgrind + 30))


class Interrupted(Exception):
    """SIGTERM, SIGHUP or the time limit: stop, clean up, exit."""


def _raise(signum: int, _frame: object) -> None:
    raise Interrupted(signal.Signals(signum).name)


def versions(tools: dict[str, str]) -> dict[str, str]:
    """Versions of what was measured."""
    out = {}
    for package in ("purgecache", "granian", "orjson", "uvloop"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    nginx = subprocess.run([tools["nginx"], "-v"], capture_output=True, text=True, check=False)
    out["nginx"] = nginx.stderr.strip().split("/")[-1]
    wrk = subprocess.run([tools["wrk"], "-v"], capture_output=True, text=True, check=False)
    out["wrk"] = (wrk.stdout or wrk.stderr).split("[")[0].replace("wrk", "").strip()
    return out


def checkout() -> str:
    """The commit measured, `-dirty` when the working tree has changes."""
    done = subprocess.run(
        ["git", "-C", str(BENCH_DIR.parent), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(signum, _raise)
    limit = args.time_limit * 60 if args.time_limit else 2 * estimate_seconds(args) + 600
    signal.alarm(int(limit))
    args.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    meta: dict[str, Any] = {
        "started": args.stamp,
        "command": " ".join(["bench/run", *argv]),
        "host": f"{os.cpu_count()} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()}",
        "estimate_s": estimate_seconds(args),
        "checkout": checkout(),
        "purgecache_from": str(Path(purgecache.__file__).parent),
    }
    workdir = Path(tempfile.mkdtemp(prefix="pcbench-"))
    minutes = f"about {meta['estimate_s'] / 60:.0f} min, at most {limit / 60:.0f}"
    say(f"work directory {workdir}; {minutes}")
    results: list[dict[str, Any]] = []
    try:
        args.variants = variants(args.access_log)
        if args.compare:
            short, src = export_revision(args.compare, workdir)
            args.variants += variants(args.access_log, short, src)
            meta["compare"] = {"revision": args.compare, "commit": short, "src": src}
            say(f"--compare: {args.compare} ({short}) exported to {src}")
        tools = ensure_debian_tools()
        meta["versions"] = versions(tools)
        say(f"versions: {meta['versions']}")
        with autogroup_off(not args.keep_autogroup) as scheduling:
            meta["scheduling"] = scheduling
            say(scheduling)
            for name in args.backends:
                results.append(run_backend(name, args, tools, workdir, say))
    except (KeyboardInterrupt, Interrupted) as error:
        say(f"interrupted ({str(error) or 'Ctrl-C'}); servers stopped")
        return 130
    except (InstallError, RuntimeError, OSError, subprocess.SubprocessError) as error:
        say(f"FAILED: {error}")
        return 1
    finally:
        signal.alarm(0)
        if args.keep:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    text = report.markdown(results, args, meta)
    raw = {"meta": meta, "args": vars(args), "results": results}
    path = report.write_results(args.results, args.stamp, text, raw)
    print("\n" + text)
    say(f"written {path} and {path.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

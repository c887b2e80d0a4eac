"""`--log-cost`: instructions per request with the access log on and off, counted by callgrind.

Each variant's service runs under `valgrind --tool=callgrind` (the supervisor and its forked
granian worker, as `purgecache serve` starts them). Per endpoint and round: a wrk warm-up,
then `callgrind_control --zero` on the worker, a wrk run, half a second for the requests in
flight, `callgrind_control --dump`; the dump's total divided by wrk's request count is the
worker's instructions per request, every thread included (granian's Rust I/O, the event loop,
the SQLite writer), user space only (the kernel's side of a write(2) is not counted). The
variants take turns in every round. Counts hardly move with the machine's load (bench/README).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.hawk import Credentials
from harness.load import SignedFiles, Wrk
from harness.measure import ENDPOINTS, REMOTE_AUTH, Bench, Measured, Plan, Side
from harness.report import log_pairs, median
from harness.service import start_service

if TYPE_CHECKING:
    from harness.backend import BackendRun

READY_SECONDS = 600  # start-up under callgrind is slow, the more so on a busy machine
SETTLE_SECONDS = 0.5  # for the requests in flight when wrk stops


class CallgrindUnavailable(RuntimeError):
    """valgrind or callgrind_control is missing."""


def _tools() -> tuple[str, str]:
    valgrind, control = shutil.which("valgrind"), shutil.which("callgrind_control")
    if not valgrind or not control:
        raise CallgrindUnavailable("valgrind (with callgrind_control) is not installed")
    return valgrind, control


def _latest_dump(folder: Path, pid: int) -> Path:
    dumps = list(folder.glob(f"callgrind.{pid}.*"))
    if not dumps:
        raise RuntimeError(f"callgrind wrote no dump for pid {pid} in {folder}")
    return max(dumps, key=lambda path: int(path.suffix[1:]))


def dump_total(path: Path) -> int:
    """The total instruction count (event Ir) of one callgrind dump."""
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no total in {path}")


def count_instructions(
    run: BackendRun, small: dict[str, str], credentials: Credentials
) -> list[dict[str, Any]]:
    """Per endpoint and log on/off pair: median instructions per request over the rounds."""
    args, say = run.args, run.say
    valgrind, control = _tools()
    folder = run.workdir / "callgrind"
    folder.mkdir(exist_ok=True)
    wrapper = [
        # --trace-children: without it the forked worker is not reachable by callgrind_control
        valgrind, "--tool=callgrind", "--trace-children=yes",
        f"--callgrind-out-file={folder}/callgrind.%p", f"--log-file={folder}/valgrind.%p.log",
    ]  # fmt: skip
    sides: dict[str, tuple[Side, int]] = {}
    for variant in args.variants:
        label = f"callgrind-{run.result['backend']}-{len(sides)}"
        say(f"  {label}: {variant.label} under callgrind (start-up takes a minute or more)")
        started, port = start_service(
            run.registry,
            label,
            run.workdir,
            small[variant.revision],
            run.clients_file,
            workers=args.workers,
            cache_time=args.cache_time,
            variant=variant,
            wrapper=wrapper,
            ready_seconds=READY_SECONDS,
        )
        tree = started.tree()
        sides[variant.label] = (Side(variant.label, started, port, port, strict=True), tree[-1])
    wrk = Wrk(run.tools["wrk"], args.threads, args.connections, run.workdir)
    bench = Bench(wrk, SignedFiles(run.workdir, credentials), say)
    plan = Plan(1, args.cg_seconds, args.warmup)
    plan_once = Plan(1, plan.seconds, 0)
    counts: dict[tuple[str, str], list[float]] = {}
    for endpoint_name in args.endpoints:
        if endpoint_name == REMOTE_AUTH:
            continue
        endpoint = ENDPOINTS[endpoint_name]
        order = list(sides)
        for round_index in range(args.cg_rounds):
            shift = round_index % len(order)
            for label in order[shift:] + order[:shift]:
                side, worker = sides[label]
                if plan.warmup > 0:
                    bench.measured_run(side, endpoint, Plan(1, plan.warmup, 0), Measured("-"))
                _control(control, "--zero", worker)
                measured = bench.measured_run(side, endpoint, plan_once, Measured("-"))
                time.sleep(SETTLE_SECONDS)
                _control(control, "--dump", worker)
                total = dump_total(_latest_dump(folder, worker))
                per_request = total / max(measured.requests, 1)
                counts.setdefault((endpoint_name, label), []).append(per_request)
                say(f"    {endpoint_name:<16} {label:<16} {per_request:>10,.0f} instructions/req")
    for side, _ in sides.values():
        run.registry.stop(side.server)
    out = []
    for endpoint_name in args.endpoints:
        for on, off in log_pairs(args.variants):
            with_log = counts.get((endpoint_name, on.label))
            without = counts.get((endpoint_name, off.label))
            if not with_log or not without:
                continue
            out.append(
                {
                    "endpoint": endpoint_name,
                    "revision": on.revision or "checkout",
                    "on": median(with_log),
                    "off": median(without),
                    "more": median(with_log) / median(without) - 1,
                    "on_rounds": with_log,
                    "off_rounds": without,
                }
            )
    return out


def _control(control: str, action: str, pid: int) -> None:
    done = subprocess.run(
        [control, action, str(pid)], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0 or "Error" in done.stdout + done.stderr:  # it exits 0 on errors
        raise RuntimeError(f"callgrind_control {action} {pid}: {done.stdout}{done.stderr}")

"""Optional: where the service's worker spends its time under load, sampled with py-spy.

The profiled runs come after the measured ones and are not in the table (sampling slows the
worker a little even with --nonblocking). The folded stacks are kept next to the results; the
summary lists the functions with the most samples on their own (self), and purgecache's
functions with the most samples under them (total).
"""

from __future__ import annotations

import collections
import re
import subprocess
from pathlib import Path
from typing import Any

from harness.procs import cpu_seconds

_OUTER = ("serve (", "run (", "<module> (", "PurgeCacheApp.__call__ (")  # in every sample
_FRAME_RE = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def busiest_worker(tree: list[int]) -> int:
    """The process of the tree that has used the most CPU (granian's Python worker)."""
    return max(tree[1:] or tree, key=lambda pid: cpu_seconds([pid]))


def start_recording(py_spy: str, pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """py-spy record in the background, folded stacks into `out`."""
    argv = [
        py_spy, "record", "--pid", str(pid), "--duration", str(int(seconds)),
        "--rate", "250", "--nonblocking", "--format", "raw", "--output", str(out),
    ]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _short(frame: str) -> str:
    match = _FRAME_RE.match(frame)
    if not match:
        return frame
    file = match["file"]
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{match['func']} ({file})"


def summarize(folded: Path, top: int = 15) -> dict[str, Any]:
    """Top functions by self samples, and the service's own functions by total samples."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in folded.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";") if f]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            if "(purgecache/" in frame and not frame.startswith(_OUTER):
                total[frame] += count

    def share(counter: collections.Counter[str]) -> list[tuple[str, float]]:
        return [(name, 100 * n / samples) for name, n in counter.most_common(top)]

    return {"samples": samples, "self": share(own), "total": share(total)}


def markdown(name: str, summary: dict[str, Any]) -> str:
    """Two small tables: self and total."""
    lines = [f"#### {name} ({summary['samples']} samples)", ""]
    lines += ["| self % | function |", "|---:|---|"]
    lines += [f"| {pct:.1f} | `{func}` |" for func, pct in summary["self"]]
    lines += ["", "| total % | purgecache function (with what it calls) |", "|---:|---|"]
    lines += [f"| {pct:.1f} | `{func}` |" for func, pct in summary["total"]]
    return "\n".join(lines)

"""Memory snapshots on demand, to find where a worker's memory goes (`bench/memory`).

Off unless the worker's environment has `PURGECACHE_TRACEMALLOC=<folder>` (read when the
worker builds its app, never at import). Then the worker starts `tracemalloc` and, on every
SIGUSR1, writes `<folder>/<pid>-<n>.tracemalloc` (a `tracemalloc.Snapshot` dump, for
`Snapshot.load`) and `<folder>/<pid>-<n>.json`: what tracemalloc traces, what glibc's malloc
holds (`mallinfo2`: in use, free inside its arenas, mapped), threads and live objects. The
difference between RSS and Python's traced bytes is memory outside Python's objects (granian's
Rust side, SQLite's and libpq's caches, allocator slack).
tracemalloc costs CPU on every allocation: a debugging aid, not for production.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import signal
import threading
import tracemalloc
from pathlib import Path
from types import FrameType

ENVIRONMENT_VARIABLE = "PURGECACHE_TRACEMALLOC"
FRAMES = 8  # stack depth kept per allocation: enough to see which of our callers made it


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
            "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def malloc_info() -> dict[str, int]:
    """glibc's malloc totals in bytes (empty where there is no `mallinfo2`)."""
    try:
        libc = ctypes.CDLL(None)
        mallinfo2 = libc.mallinfo2
    except (OSError, AttributeError):
        return {}
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return {
        "arena_bytes": info.arena,  # heap obtained with brk/sbrk and arenas
        "mmapped_bytes": info.hblkhd,  # large blocks mapped one by one
        "in_use_bytes": info.uordblks,
        "free_in_arenas_bytes": info.fordblks,
    }


class Snapshots:
    """Writes one snapshot pair per SIGUSR1 into `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.taken = 0

    def take(self) -> Path:
        """Write a snapshot now; returns the `.tracemalloc` file."""
        self.taken += 1
        stem = self.folder / f"{os.getpid()}-{self.taken}"
        current, peak = tracemalloc.get_traced_memory()
        facts = {
            "pid": os.getpid(),
            "traced_bytes": current,
            "traced_peak_bytes": peak,
            "threads": threading.active_count(),
            "native_threads": len(os.listdir(f"/proc/{os.getpid()}/task")),
            "gc_objects": len(gc.get_objects()),
            "malloc": malloc_info(),
        }
        tracemalloc.take_snapshot().dump(f"{stem}.tracemalloc")
        Path(f"{stem}.json").write_text(json.dumps(facts, indent=1))
        return Path(f"{stem}.tracemalloc")

    def on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self.take()


def install_from_environment() -> Snapshots | None:
    """Start tracing and listen for SIGUSR1 if PURGECACHE_TRACEMALLOC names a folder."""
    folder = os.environ.get(ENVIRONMENT_VARIABLE)
    if not folder:
        return None
    Path(folder).mkdir(parents=True, exist_ok=True)
    tracemalloc.start(FRAMES)
    snapshots = Snapshots(Path(folder))
    signal.signal(signal.SIGUSR1, snapshots.on_signal)
    return snapshots

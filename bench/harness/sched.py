"""Neutral CPU scheduling for the run: Linux's autogroup off while measuring.

With `kernel.sched_autogroup_enabled` on, every session is one scheduling group that gets an
equal share of the CPUs. The harness starts each server in a session of its own (so that it can
stop the whole process group), and wrk runs in the harness's session. A single-threaded server
(nginx) loses nothing to that, but a server with two busy threads (granian's Rust I/O thread
and its Python thread) is then squeezed into one group's share: on this 2-CPU machine that cost
the service a quarter of its throughput (26k against 36k req/s for purgeRequests, same
binary, same requests). A server on a real host runs in its own cgroup, not in an autogroup,
so the harness switches autogroup off for the run (when it may) and puts it back afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

AUTOGROUP = Path("/proc/sys/kernel/sched_autogroup_enabled")


@contextlib.contextmanager
def autogroup_off(wanted: bool = True) -> Iterator[str]:
    """Turn autogroup scheduling off until the block ends; yields a line for the summary."""
    try:
        before = AUTOGROUP.read_text().strip()
    except OSError:
        yield "scheduling: no autogroup on this kernel"
        return
    if before == "0":
        yield "scheduling: autogroup off (as found)"
        return
    if not wanted:
        yield "scheduling: autogroup ON (--keep-autogroup): two-threaded servers are squeezed"
        return
    try:
        AUTOGROUP.write_text("0")
    except OSError as error:
        yield f"scheduling: autogroup ON, could not turn it off ({error.strerror})"
        return
    try:
        yield "scheduling: autogroup turned off for the run (restored afterwards)"
    finally:
        AUTOGROUP.write_text(before)

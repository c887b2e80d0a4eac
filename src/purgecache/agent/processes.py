"""The processes a lease belongs to, and whether they may still be running.

A process is named by its pid and its start time (field 22 of `/proc/<pid>/stat`, in clock
ticks after boot): once a process ends the kernel may give its pid to another, which started
later. Together with the boot id kept in the lease, the pair names one process for good.

Every question is answered on the safe side: a process counts as ended only when the kernel
says its pid is free, the pid now names a process started at another time, or it is a zombie.
Whatever cannot be read (no `/proc`, a `hidepid` mount, another pid namespace) counts as
still running, so a lease is never ended under a task that may be alive.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

_PROC = "/proc"


@dataclass(frozen=True, slots=True)
class Process:
    """One process of one boot: its pid and when it started (clock ticks after boot)."""

    pid: int
    start: int


@dataclass(frozen=True, slots=True)
class _Stat:
    state: str
    parent: int
    start: int


def _stat(pid: int) -> _Stat | None:
    """The state, parent pid and start time of `pid`; None if it cannot be read."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as file:
            text = file.read().decode("ascii", "replace")
    except OSError:
        return None
    # `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so split after the
    # last `)`; what follows starts with field 3 (state).
    fields = text.rpartition(")")[2].split()
    try:
        return _Stat(fields[0], int(fields[1]), int(fields[19]))
    except (IndexError, ValueError):
        return None


def identify(pid: int) -> Process | None:
    """The process `pid` names now; None if there is none (or it cannot be read)."""
    found = _stat(pid) if pid > 0 else None
    return None if found is None else Process(pid, found.start)


def pid_namespace() -> str:
    """This process's pid namespace ("" where it cannot be read): pids mean something only
    inside one."""
    try:
        return os.readlink(f"{_PROC}/self/ns/pid")
    except OSError:
        return ""


def ended(process: Process) -> bool:
    """Whether `process` has certainly ended (see the module's docstring)."""
    if not os.path.exists(f"{_PROC}/self/stat"):
        return False  # no /proc: nothing can be known
    try:
        os.kill(process.pid, 0)  # unlike /proc, not hidden by `hidepid`
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # it exists, owned by someone else
    found = _stat(process.pid)
    if found is None:
        return False  # exists, but hidden from us
    return found.start != process.start or found.state == "Z"


def _program(pid: int) -> tuple[str | None, bytes | None]:
    """What `pid` runs: its executable and command line (None where unreadable)."""
    exe: str | None = None
    cmdline: bytes | None = None
    with contextlib.suppress(OSError):
        exe = os.readlink(f"{_PROC}/{pid}/exe")
    with contextlib.suppress(OSError), open(f"{_PROC}/{pid}/cmdline", "rb") as file:
        cmdline = file.read()
    return exe, cmdline


def task_processes(owner_pid: int | None = None) -> tuple[Process, ...]:
    """The processes that hold a lease taken now: `owner_pid` if given (LookupError if there
    is no such process), else the parent of this process, which runs the task.

    A parent that is a copy of its own parent (a shell's subshell, such as the one running
    `$(purgecache agent mount NAME | tail -n 1)`, which exits at once) is not the task: its
    ancestors up to the first that runs another program are taken too, and the lease holds
    while any of them runs.
    """
    if owner_pid is not None:
        process = identify(owner_pid)
        if process is None:
            raise LookupError(f"no process {owner_pid}")
        return (process,)
    found: list[Process] = []
    pid = os.getppid()
    while (stat := _stat(pid)) is not None:
        found.append(Process(pid, stat.start))
        if stat.parent <= 1 or _program(pid) != _program(stat.parent):
            break
        pid = stat.parent
    return tuple(found)

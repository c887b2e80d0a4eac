"""Processes the harness starts: launching, readiness, the process tree, RSS, CPU, stopping.

Every server is started in its own session (so a Ctrl-C typed at the terminal reaches only the
harness, which then stops them in order), and is stopped by its own PID, then by its own
process group if it does not go within the grace period. Nothing is ever killed by name.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float, alive: subprocess.Popen[bytes]) -> None:
    """Until 127.0.0.1:port accepts connections; RuntimeError if the process dies first or
    time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive.poll() is not None:
            raise RuntimeError(f"exited with status {alive.returncode} before listening")
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"not listening on port {port} after {timeout:.0f} s")


def _stat_fields(pid: int, thread: int | None = None) -> list[str]:
    """/proc's stat fields of a process (or of one of its threads), from the 3rd (state) on."""
    where = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    text = Path(where).read_text()
    return text[text.rindex(")") + 2 :].split()


def _cpu_ticks(fields: list[str]) -> int:
    return int(fields[11]) + int(fields[12])  # utime, stime


def process_tree(root: int) -> list[int]:
    """`root` and all its live descendants, parents first."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            parent = int(_stat_fields(int(entry.name))[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    tree, queue = [], [root]
    while queue:
        pid = queue.pop(0)
        if Path(f"/proc/{pid}").exists():
            tree.append(pid)
            queue.extend(sorted(children.get(pid, [])))
    return tree


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time used so far by these processes (all their threads)."""
    total = 0
    for pid in pids:
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        total += _cpu_ticks(fields)
    return total / CLOCK_TICKS


def main_thread_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process's main thread alone (in a granian worker, the
    thread that runs the event loop and every line of Python); 0 if it is gone."""
    try:
        return _cpu_ticks(_stat_fields(pid, thread=pid)) / CLOCK_TICKS
    except OSError:
        return 0.0


def rss_kib(pid: int) -> int | None:
    """VmRSS of one process in KiB (None if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def command_line(pid: int) -> str:
    """The process's command line, space-separated."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


@dataclass
class Started:
    """A server process the harness started, with where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def tree(self) -> list[int]:
        """This process and its children (granian's workers, for the service)."""
        return process_tree(self.pid) if self.process.poll() is None else []

    def log_tail(self, lines: int = 5) -> str:
        """The last lines it wrote."""
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def take_log(self) -> tuple[int, int]:
        """Bytes and lines written to the log since the last call; the file is emptied."""
        size = lines = 0
        try:
            with self.log.open("rb") as text:
                while chunk := text.read(1 << 20):
                    size += len(chunk)
                    lines += chunk.count(b"\n")
            os.truncate(self.log, 0)
        except OSError:
            pass
        return size, lines

    def stop(self, grace: float = 15.0, sig: int = signal.SIGTERM) -> None:
        """Ask it to stop; after `grace` seconds kill its process group (only ours)."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            print(f"[cleanup] {self.name} (pid {self.pid}) ignored SIGTERM; killing its group")
            os.killpg(self.pid, signal.SIGKILL)  # its own session: pgid == pid
            self.process.wait(5)


def launch(name: str, argv: Sequence[str], log: Path, env: dict[str, str] | None = None) -> Started:
    """Start a server in a new session, stdout and stderr appended to `log` (O_APPEND, as
    systemd's `StandardError=append:` opens it: the harness may empty the file between runs)."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return Started(name, process, log)


class Registry:
    """Every server started during the run, stopped in reverse order however the run ends."""

    def __init__(self) -> None:
        self.started: list[Started] = []

    def add(self, started: Started) -> Started:
        self.started.append(started)
        return started

    def stop(self, started: Started) -> None:
        """Stop one now."""
        started.stop()
        if started in self.started:
            self.started.remove(started)

    def stop_all(self) -> None:
        """Stop everything still running."""
        while self.started:
            started = self.started.pop()
            try:
                started.stop()
            except Exception as error:  # keep going: the others must stop too
                print(f"[cleanup] stopping {started.name} (pid {started.pid}): {error}")

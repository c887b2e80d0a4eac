"""A small network of "hosts" for one test: a network namespace per host (`ip netns`), each
with one veth interface `eth0` plugged into a bridge that lives in a namespace of its own (the
switch), so nothing is added to the machine's own namespace. Names carry the test process's
pid; `close()` ends every process left in them and deletes them, which removes the veth pairs
and the bridge with them (and a new network first deletes those of a test process that was
killed before it could)."""

from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from deployment.tools import require_root, require_tool

CLONE_NEWNET = 0x40000000
SUBNET = "10.77.0"  # private to the switch: no route leads out of it


class Network:
    """Hosts named by role (`hosts`: role -> last byte of its address on SUBNET.0/24)."""

    def __init__(self, hosts: dict[str, int]) -> None:
        require_root()
        self.ip = require_tool("ip", under=("/usr/sbin", "/sbin"))
        self.prefix = f"pcnet{os.getpid()}"
        self.addresses = {role: f"{SUBNET}.{last}" for role, last in hosts.items()}
        self.made: list[str] = []
        self._sweep_leftovers()
        try:
            self._add("switch")
            self._ip("-n", self.netns("switch"), "link", "add", "br0", "type", "bridge")
            self._ip("-n", self.netns("switch"), "link", "set", "br0", "up")
            for role in hosts:
                self._plug(role)
        except BaseException:
            self.close()
            raise

    def netns(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    def address(self, role: str) -> str:
        return self.addresses[role]

    def run_in(self, role: str) -> list[str]:
        """The command prefix that runs a program on host `role`."""
        return [self.ip, "netns", "exec", self.netns(role)]

    def _ip(self, *args: str) -> None:
        subprocess.run([self.ip, *args], check=True, capture_output=True, timeout=30)

    def _add(self, role: str) -> None:
        self._ip("netns", "add", self.netns(role))
        self.made.append(self.netns(role))
        self._ip("-n", self.netns(role), "link", "set", "lo", "up")

    def _plug(self, role: str) -> None:
        """Host `role` with `eth0` at its address, cabled to port `p-<role>` of the bridge."""
        self._add(role)
        host, switch, port = self.netns(role), self.netns("switch"), f"p-{role}"[:15]
        self._ip("link", "add", "eth0", "netns", host, "type", "veth", "peer", "name", port,
                 "netns", switch)  # fmt: skip
        self._ip("-n", switch, "link", "set", port, "master", "br0", "up")
        self._ip("-n", host, "addr", "add", f"{self.address(role)}/24", "dev", "eth0")
        self._ip("-n", host, "link", "set", "eth0", "up")

    @contextmanager
    def inside(self, role: str) -> Iterator[None]:
        """Run this thread on host `role`: sockets it opens (and processes it starts) meanwhile
        belong to that host's network, as they would on another machine."""
        with (
            open("/proc/thread-self/ns/net") as here,
            open(f"/run/netns/{self.netns(role)}") as there,
        ):
            _setns(there.fileno())
            try:
                yield
            finally:
                _setns(here.fileno())

    def close(self) -> None:
        """End the processes still running on the hosts (by pid), then delete the namespaces."""
        for name in self.made:
            for pid in self._pids(name):
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while any(self._pids(name) for name in self.made) and time.monotonic() < deadline:
            time.sleep(0.05)
        for name in reversed(self.made):
            subprocess.run([self.ip, "netns", "del", name], capture_output=True, timeout=30)
        self.made.clear()

    def _sweep_leftovers(self) -> None:
        """Delete the namespaces of earlier test processes that no longer run."""
        listed = subprocess.run(
            [self.ip, "netns", "list"], capture_output=True, text=True, timeout=30
        )
        names = (line.split()[0] for line in listed.stdout.splitlines() if line.strip())
        for name in names:
            owner = re.fullmatch(r"pcnet(\d+)-[a-z0-9-]+", name)
            if owner and not _running(int(owner.group(1))):
                self.made.append(name)
        self.close()

    def _pids(self, name: str) -> list[int]:
        done = subprocess.run(
            [self.ip, "netns", "pids", name], capture_output=True, text=True, timeout=30
        )
        return [int(pid) for pid in done.stdout.split()]


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True

"""Fixtures of the agent tests: registries on real temporary directories with fake clocks,
a fake service, simulated workers driving the real CLI, and undeletable files."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.fakes import FakeClock, FakeService
from purgecache.agent import CacheRegistry

from conftest import LiveServer, start_server

MakeRegistry = Callable[..., CacheRegistry]


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One SQLite server for all agent tests: the agent does not care about the backend, and
    each test uses a worker pool of its own."""
    live = start_server(tmp_path_factory.mktemp("agent-server"))
    yield live
    live.stop()


@pytest.fixture
def clock() -> FakeClock:
    """The worker's clocks."""
    return FakeClock()


@pytest.fixture
def service(clock: FakeClock) -> FakeService:
    """A fake service whose clock agrees with the worker's."""
    return FakeService(clock)


@pytest.fixture
def make_registry(tmp_path: Path, clock: FakeClock) -> MakeRegistry:
    """Registries on `tmp_path/root` (or `root`), on the fake clock unless told otherwise."""

    def make(root: Path | None = None, **options: Any) -> CacheRegistry:
        options.setdefault("clock", clock)
        return CacheRegistry(root or tmp_path / "root", **options)

    return make


@pytest.fixture
def registry(make_registry: MakeRegistry) -> CacheRegistry:
    """A registry on a fresh cache root."""
    return make_registry()


@pytest.fixture
def immutable() -> Iterator[Callable[[Path], None]]:
    """Make a path undeletable even by root, with `chattr +i` (chmod does not stop root, and
    the agent makes read-only directories writable before removing them anyway); lifted
    after the test. Skips where the file system or the privileges do not allow it."""
    marked: list[Path] = []

    def mark(path: Path) -> None:
        result = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"chattr +i is not possible here: {result.stderr.strip()}")
        marked.append(path)

    yield mark
    for path in reversed(marked):
        lift_immutable(path)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A file system of its own, 4 MiB of tmpfs, to fill to the last byte; unmounted after
    the test. Skips where it cannot be mounted (not root), but fails under CI=true."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(mount_point)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        reason = f"cannot mount a small tmpfs: {result.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    yield mount_point
    subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


def fill_disk(path: Path) -> None:
    """Write the new file `path` until its file system has not one byte left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        for size in (1 << 16, 1 << 12, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    assert free_bytes(path.parent) == 0


def free_bytes(path: Path) -> int:
    """What the file system of `path` has free."""
    found = os.statvfs(path)
    return found.f_bavail * found.f_frsize


def lift_immutable(path: Path) -> None:
    """Undo `chattr +i` (no error if the path is gone)."""
    if path.exists():
        subprocess.run(["chattr", "-i", str(path)], check=True)


def agent_command(*args: str) -> list[str]:
    """The `purgecache agent ...` command line, run with this interpreter."""
    return [sys.executable, "-m", "purgecache", "agent", *args]


def clean_environ(**extra: str) -> dict[str, str]:
    """The environment without TASKCLUSTER_* or PURGECACHE_AGENT_* variables, plus `extra`."""
    prefixes = ("TASKCLUSTER_", "PURGECACHE_AGENT_")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return environ | extra

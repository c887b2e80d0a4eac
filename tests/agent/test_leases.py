"""Leases that end: a task that dies without `release` frees its instance once every process
of it is gone (never while one may run), and `release` takes back whatever the task made of
its `data`, never following a symbolic link. Real processes, real files."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.conftest import MakeRegistry, agent_command
from agent.fakes import FakeClock, FakeService
from agent.worker import Worker
from purgecache.agent import CacheRegistry, Released, sync_once
from purgecache.agent.files import boot_id
from purgecache.agent.processes import Process, identify, task_processes
from purgecache.agent.records import Lease, read_instance
from purgecache.agent.sync import SyncReport

from conftest import LiveServer

POOL = "proj-a/linux"


@pytest.fixture
def clock() -> FakeClock:
    """The worker's clocks, on this machine's real boot (processes belong to it)."""
    boottime = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    return FakeClock(time.time_ns() // 1_000_000, boottime, boot_id())


@pytest.fixture
def task() -> Iterator[subprocess.Popen[bytes]]:
    """A running process standing for a task (killed after the test)."""
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


def end(process: subprocess.Popen[bytes]) -> None:
    """Kill the task and reap it: its pid is free."""
    process.kill()
    process.wait()


def sync(registry: CacheRegistry, service: FakeService) -> SyncReport:
    return sync_once(registry, service, POOL)


def test_a_lease_ends_when_the_task_process_does(
    registry: CacheRegistry, service: FakeService, task: subprocess.Popen[bytes]
) -> None:
    """While the task runs its instances stay leased (a purged one is only marked); once
    it is gone the next sync deletes the purged one and frees the other for the next task."""
    owners = task_processes(task.pid)
    purged, kept = registry.mount("purged", owners), registry.mount("kept", owners)
    (kept / "file").write_text("built")
    service.purge("purged")

    report = sync(registry, service)
    assert report.doomed == (purged.parent,) and report.reclaimed == ()
    assert report.deleted == () and purged.exists()
    assert registry.mount("kept") != kept  # still held: another instance (held by pytest)

    end(task)
    report = sync(registry, service)
    assert report.deleted == (purged.parent,) and not purged.parent.exists()
    assert report.reclaimed == (kept.parent,)
    assert "1 lease(s) of ended tasks reclaimed" in report.summary()
    assert read_instance(kept.parent).lease is None
    assert registry.mount("kept") == kept and (kept / "file").read_text() == "built"


def test_a_reused_pid_is_not_the_task(registry: CacheRegistry, service: FakeService) -> None:
    """A lease whose pid now names a process started at another time (the pid was reused)
    has ended; with the right start time the same pid holds it."""
    me = identify(os.getpid())
    assert me is not None
    held = registry.mount("held", (me,))
    reused = registry.mount("reused", (Process(me.pid, me.start - 1),))
    report = sync(registry, service)
    assert report.reclaimed == (reused.parent,)
    assert read_instance(held.parent).lease is not None


@pytest.mark.parametrize(
    ("lease", "held"),
    [
        (Lease("b1", 0, 1, (Process(7, 1),), "ns1"), False),  # the task ended
        (Lease("b1", 0, 1, (Process(7, 1), Process(8, 1)), "ns1"), True),  # one still runs
        (Lease("b1", 0, 1, (), "ns1"), True),  # an older agent's lease: owner unknown
        (Lease("b1", 0, 1, (Process(7, 1),), "ns2"), True),  # pids of another namespace
        (Lease("b1", 0, 1, (Process(7, 1),), ""), True),  # namespace unknown
        (Lease("b0", 0, 1, (Process(8, 1),), "ns1"), False),  # an earlier boot
    ],
)
def test_a_lease_ends_only_when_every_owner_has_certainly_ended(lease: Lease, held: bool) -> None:
    """Only a task known gone (same boot, same pid namespace, every process ended) or a
    reboot ends a lease; whatever cannot be told keeps it."""
    assert lease.held("b1", "ns1", lambda process: process.pid == 7) is held


def test_an_unreleased_lease_after_a_restart_of_the_agent_is_read_back(
    make_registry: MakeRegistry, service: FakeService, task: subprocess.Popen[bytes]
) -> None:
    """The owners are stored with the lease: another agent process ends it."""
    path = make_registry().mount("checkouts", task_processes(task.pid))
    end(task)
    assert sync(make_registry(), service).reclaimed == (path.parent,)


def test_release_takes_back_data_replaced_by_a_symlink_and_never_follows_it(
    registry: CacheRegistry, tmp_path: Path
) -> None:
    """A task that replaced `data` with a link to elsewhere: `release` of the printed path
    deletes the instance (it holds no cache any more), and the link's target is untouched."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious").write_text("keep")
    path = registry.mount("checkouts")
    path.rmdir()
    path.symlink_to(elsewhere)
    assert registry.release(path) == (Released.REPLACED, ())
    assert not path.parent.exists() and (elsewhere / "precious").read_text() == "keep"
    assert registry.mount("checkouts") != path


def test_an_ended_lease_with_replaced_data_is_never_handed_out(
    registry: CacheRegistry, service: FakeService, task: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    """An instance whose task made `data` a link and died is deleted by the next sync (or
    moved aside by `mount`), never handed out, the link never followed."""
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "sub").mkdir(parents=True)
    first = registry.mount("a", task_processes(task.pid))
    second = registry.mount("b", task_processes(task.pid))
    for path in (first, second):
        path.rmdir()
        path.symlink_to(elsewhere)
    end(task)
    fresh = registry.mount("a")
    assert fresh != first and not first.parent.exists()
    deleted = sync(registry, service).deleted  # the one `mount` moved aside too
    assert deleted == (second.parent, first.parent)
    assert (elsewhere / "sub").is_dir()


def shell_with_a_mount(root: Path) -> subprocess.Popen[str]:
    """A shell that mounts `checkouts` as the README's hooks do, in `$(... | tail -n 1)`
    (whose subshell exits at once), prints the path, then runs until its stdin closes."""
    mount = " ".join(agent_command("mount", "checkouts", "--cache-root", str(root)))
    script = f'dir=$({mount} | tail -n 1); echo "$dir"; read line'
    return subprocess.Popen(
        ["sh", "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def test_mount_leases_to_the_shell_that_ran_it_until_that_shell_ends(
    tmp_path: Path, server: LiveServer
) -> None:
    """By default the owner is mount's parent; a `$(...)` subshell counts with the shell
    that made it. A purge while the shell runs only marks the instance; once the shell is
    gone, `agent sync` deletes it."""
    from agent.test_end_to_end import purge

    worker = Worker(tmp_path / "root", f"p-{time.monotonic_ns()}/linux", server.root_url)
    shell = shell_with_a_mount(worker.root)
    assert shell.stdout is not None
    path = Path(shell.stdout.readline().strip())
    try:
        purge(server.root_url, worker.pool, "checkouts")
        marked = worker.sync()
        assert f"in use, deleted on release: {path.parent}" in marked.stdout, marked
        assert path.is_dir()
    finally:
        shell.communicate("done\n", timeout=30)
    gone = worker.sync()
    assert gone.returncode == 0 and f"deleted {path.parent}" in gone.stdout, gone
    assert not path.parent.exists()


def test_owner_pid_names_the_task_and_must_exist(
    tmp_path: Path, server: LiveServer, task: subprocess.Popen[bytes]
) -> None:
    """`mount --owner-pid PID` leases to that process: once it ended, `agent sync` frees
    the instance and says so; a pid that names no process is a usage error."""
    worker = Worker(tmp_path / "root", f"p-{time.monotonic_ns()}/linux", server.root_url)
    mounted = worker.run("mount", "checkouts", "--owner-pid", str(task.pid))
    assert mounted.returncode == 0, mounted
    path = Path(mounted.stdout.splitlines()[-1])
    assert worker.sync().stdout.count("free again") == 0
    end(task)
    freed = worker.sync()
    assert f"free again, its task ended without a release: {path.parent}" in freed.stdout
    assert worker.mount("checkouts") == path

    missing = worker.run("mount", "checkouts", "--owner-pid", str(task.pid))
    assert missing.returncode == 2 and f"no process {task.pid}" in missing.stderr


def test_release_of_a_symlinked_data_path_from_the_command_line(tmp_path: Path) -> None:
    """`agent release` accepts the very path `mount` printed after the task replaced it
    with a link (it said `... is not a cache instance` before)."""
    root = tmp_path / "root"
    target = tmp_path / "target"
    target.mkdir()
    (target / "precious").write_text("keep")
    mount = agent_command("mount", "checkouts", "--cache-root", str(root))
    path = Path(subprocess.run(mount, capture_output=True, text=True, timeout=60).stdout.strip())
    path.rmdir()
    path.symlink_to(target)
    release = agent_command("release", str(path), "--cache-root", str(root))
    result = subprocess.run(release, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result
    assert f"deleted {path}" in result.stdout
    assert not path.parent.exists() and (target / "precious").read_text() == "keep"

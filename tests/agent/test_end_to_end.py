"""End to end: a real `purgecache serve`, several simulated workers on real temporary
directories, each driving the real `purgecache agent` CLI in subprocesses."""

from __future__ import annotations

import re
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from agent.conftest import clean_environ, lift_immutable
from agent.proxy import RecordingProxy
from agent.worker import Worker
from purgecache.agent import CacheRegistry, sync_once
from purgecache.agent.fetch import ServiceFetcher
from purgecache.agent.records import read_cache, read_instance
from purgecache.client import Credentials, PurgeCache
from purgecache.model import format_time

from conftest import ADMIN, READER, LiveServer

MakeWorker = Callable[..., Worker]
SLACK_MS = 300_000


@pytest.fixture
def pool() -> str:
    """A worker pool no other test uses."""
    return f"p-{uuid.uuid4().hex[:12]}/linux"


@pytest.fixture
def make_worker(tmp_path: Path, server: LiveServer, pool: str) -> MakeWorker:
    """Simulated workers of `pool`, each with its own cache root under tmp_path."""

    def make(name: str = "worker", root_url: str | None = None) -> Worker:
        return Worker(tmp_path / name, pool, root_url or server.root_url)

    return make


def purge(root_url: str, pool: str, *cache_names: str) -> None:
    """Purge caches as an administrator would, with the Python client."""
    with PurgeCache(root_url, Credentials(*ADMIN)) as client:
        for name in cache_names:
            client.purge_cache(pool, name)


def purge_with_cli(root_url: str, pool: str, *cache_names: str) -> None:
    """Purge caches with `purgecache purge`, as a user at a shell would."""
    environ = clean_environ(
        TASKCLUSTER_ROOT_URL=root_url,
        TASKCLUSTER_CLIENT_ID=ADMIN[0],
        TASKCLUSTER_ACCESS_TOKEN=ADMIN[1],
    )
    command = [sys.executable, "-m", "purgecache", "purge", pool, *cache_names]
    result = subprocess.run(command, capture_output=True, text=True, env=environ, timeout=60)
    assert result.returncode == 0, result.stderr


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_a_purge_reaches_every_agent(
    make_worker: MakeWorker, server: LiveServer, pool: str
) -> None:
    """Three workers with the same caches: a CLI purge of one cache removes it from every
    worker's disk and leaves the other cache alone."""
    workers = [make_worker(f"w{i}") for i in range(3)]
    kept = {}
    purged = {}
    for worker in workers:
        purged[worker.root] = worker.free_instance("checkouts")
        kept[worker.root] = worker.free_instance("sccache")
    purge_with_cli(server.root_url, pool, "checkouts")
    for worker in workers:
        result = worker.sync()
        assert result.returncode == 0, result.stderr
        assert f"deleted {purged[worker.root].parent}" in result.stdout
        assert not purged[worker.root].exists()
        assert (kept[worker.root] / "content").read_text() == "built"


def test_caches_created_after_before_survive(
    make_worker: MakeWorker, server: LiveServer, pool: str
) -> None:
    """An instance created after the purge's `before` is kept and handed out again."""
    worker = make_worker()
    assert worker.sync().returncode == 0  # measures the service's clock
    old = worker.mount("checkouts")  # a running task holds it
    purge(server.root_url, pool, "checkouts")
    worker.outlast_clock_error()
    new = worker.mount("checkouts")  # made after the purge, before the agent knows of it
    worker.release(old)
    worker.release(new)
    assert worker.sync().returncode == 0
    assert not old.exists() and new.exists()
    assert worker.mount("checkouts") == new


def test_an_in_use_instance_is_deleted_on_release(
    make_worker: MakeWorker, server: LiveServer, pool: str
) -> None:
    """A purge never pulls a cache from under a running task: the instance is marked, the
    next task gets a fresh one, and it goes when its task releases it."""
    worker = make_worker()
    busy = worker.mount("checkouts")
    (busy / "work").write_text("task running")
    purge(server.root_url, pool, "checkouts")
    result = worker.sync()
    assert result.returncode == 0, result.stderr
    assert f"in use, deleted on release: {busy.parent}" in result.stdout
    assert (busy / "work").read_text() == "task running"
    other = worker.mount("checkouts")
    assert other != busy and list(other.iterdir()) == []
    released = worker.release(busy)
    assert f"deleted {busy} (purged while in use)" in released.stdout
    assert not busy.parent.exists() and other.exists()


def test_service_down_during_a_sync_loses_nothing(
    server_factory: Callable[..., LiveServer], tmp_path: Path, pool: str
) -> None:
    """With the service down a sync exits 3 quickly and changes nothing; once the service
    is back the purge it missed is applied."""
    live = server_factory(data_dir=tmp_path / "service")
    worker = Worker(tmp_path / "worker", pool, live.root_url)
    path = worker.free_instance("checkouts")
    assert worker.sync().returncode == 0
    watermark = worker.watermark()
    purge(live.root_url, pool, "checkouts")
    live.stop()

    started = time.monotonic()
    result = worker.sync()
    assert result.returncode == 3, result
    assert "nothing deleted" in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 15
    assert (path / "content").read_text() == "built"
    assert worker.watermark() == watermark

    server_factory(data_dir=tmp_path / "service", port=live.port)
    result = worker.sync()
    assert result.returncode == 0, result.stderr
    assert not path.exists()


def test_daemon_keeps_caches_while_the_service_is_down_and_purges_when_back(
    server_factory: Callable[..., LiveServer], tmp_path: Path, pool: str
) -> None:
    """`agent run` warns and retries with back-off while the service is unreachable,
    deletes nothing meanwhile, applies the purge once it returns, and stops on SIGTERM."""
    live = server_factory(data_dir=tmp_path / "service")
    worker = Worker(tmp_path / "worker", pool, live.root_url)
    path = worker.free_instance("checkouts")
    purge(live.root_url, pool, "checkouts")
    live.stop()
    daemon = worker.daemon("--interval", "1h")
    try:
        warned = "service unreachable, caches kept, retrying in"
        wait_for(lambda: worker.daemon_log.read_text().count(warned) >= 2, timeout=30)
        assert path.exists()
        server_factory(data_dir=tmp_path / "service", port=live.port)
        wait_for(lambda: not path.exists(), timeout=30)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(10) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    log = worker.daemon_log.read_text()
    retry = re.compile(r"unreachable, caches kept, retrying in ([0-9.]+) s")
    waits = [float(wait) for wait in retry.findall(log)]
    assert 1.6 <= waits[0] <= 2.4 and 3.2 <= waits[1] <= 4.8  # 2 s, 4 s ... ±20 %
    assert "1 instance(s) deleted" in log and log.endswith("stopped\n")


def test_a_failed_delete_does_not_stop_the_rest(
    make_worker: MakeWorker, server: LiveServer, pool: str, immutable: Callable[[Path], None]
) -> None:
    """One file even root cannot delete (`chattr +i`) among 100 of an instance: the sync
    deletes the other files and the other instances, names that file once and exits 1; the
    instance is never handed out again, and a later sync removes the file once it can."""
    worker = make_worker()
    stuck = worker.mount("a")
    for i in range(100):
        (stuck / f"f{i:03}").write_bytes(b"x" * 10_000)
    worker.release(stuck)
    others = [worker.free_instance(name) for name in ("b", "c")]
    immutable(stuck / "f050")
    purge(server.root_url, pool, "a", "b", "c")
    result = worker.sync()
    assert result.returncode == 1, result
    (leftover,) = (worker.root / "trash").iterdir()
    stuck_file = leftover / "data" / "f050"
    assert sorted(leftover.rglob("*")) == [leftover / "data", stuck_file]
    assert result.stderr.count(str(stuck_file)) == 1, result.stderr
    assert f"could not remove {leftover}: 1 entry left: {stuck_file} (Operation not " in (
        result.stderr
    )
    assert "2 instance(s) deleted" in result.stdout
    assert not any(path.exists() for path in others)
    assert not stuck.exists()  # moved out of the registry: no task can get it
    assert worker.mount("a") != stuck

    lift_immutable(stuck_file)
    result = worker.sync()
    assert result.returncode == 0, result.stderr
    assert list((worker.root / "trash").iterdir()) == []


@pytest.fixture
def proxy(server: LiveServer) -> Iterator[RecordingProxy]:
    """A proxy in front of the service, to rewrite its answers' Date."""
    recording = RecordingProxy(server.root_url)
    yield recording
    recording.stop()


def test_a_date_two_hours_late_for_one_sync_loses_no_purge(
    make_worker: MakeWorker, server: LiveServer, pool: str, proxy: RecordingProxy
) -> None:
    """A proxy shifting Date by +2 h for one sync: that sync exits 3 and changes nothing,
    an instance made meanwhile is not dated in the future, and a purge issued afterwards is
    applied by the next sync: `mount` never returns the old instance."""
    worker = make_worker(root_url=proxy.root_url)
    old = worker.free_instance("checkouts", "old contents")
    assert worker.sync().returncode == 0
    watermark = worker.watermark()
    proxy.date_shift = timedelta(hours=2)
    refused = worker.sync()
    assert refused.returncode == 3, refused
    assert "after this worker's clock" in refused.stderr
    assert "caches kept, nothing deleted" in refused.stderr
    assert worker.watermark() == watermark
    created = read_instance(worker.mount("other").parent).created
    assert created.ms - created.error_ms <= time.time() * 1000

    proxy.date_shift = timedelta(0)
    purge(server.root_url, pool, "checkouts")
    result = worker.sync()
    assert result.returncode == 0, result.stderr
    assert "1 purge request(s), 1 instance(s) deleted" in result.stdout
    fresh = worker.mount("checkouts")
    assert fresh != old and list(fresh.iterdir()) == [] and not old.exists()


def test_a_date_two_hours_early_deletes_nothing_made_after_the_purge(
    make_worker: MakeWorker, server: LiveServer, pool: str, proxy: RecordingProxy
) -> None:
    """A proxy shifting Date by -2 h for one sync: that sync exits 3; an instance made after
    the purge survives the next sync (and its release), the one made before goes."""
    worker = make_worker(root_url=proxy.root_url)
    assert worker.sync().returncode == 0  # measures the service's clock
    old = worker.mount("checkouts")  # a task holds it
    purge(server.root_url, pool, "checkouts")
    worker.outlast_clock_error()
    proxy.date_shift = timedelta(hours=-2)
    refused = worker.sync()
    assert refused.returncode == 3, refused
    assert "before this worker's clocks" in refused.stderr
    new = worker.mount("checkouts")  # made after the purge
    worker.release(new)
    worker.release(old)
    proxy.date_shift = timedelta(0)
    result = worker.sync()
    assert result.returncode == 0, result.stderr
    assert not old.exists() and new.exists()
    assert worker.mount("checkouts") == new


def test_a_before_in_2099_is_refused_and_caching_goes_on(
    make_worker: MakeWorker, server: LiveServer, pool: str, proxy: RecordingProxy
) -> None:
    """The issue's case: a proxy rewrites a purge request's `before` to 2099. That sync
    exits 3 and stores nothing (no `purged_before`, watermark unchanged), so the instance is
    still handed out and released as usual (not a new instance on every mount and "purged
    while in use" on every release); the real purge applies once the answers are honest."""
    worker = make_worker(root_url=proxy.root_url)
    old = worker.free_instance("checkouts", "old contents")
    assert worker.sync().returncode == 0
    watermark = worker.watermark()
    purge(server.root_url, pool, "checkouts")
    far = b'"before":"2099-01-01T00:00:00.000Z"'
    proxy.rewrite = lambda body: re.sub(rb'"before":\s*"[^"]*"', far, body)
    refused = worker.sync()
    assert refused.returncode == 3, refused
    assert "has before 2099-01-01T00:00:00.000Z" in refused.stderr
    assert "caches kept, nothing deleted" in refused.stderr
    assert worker.watermark() == watermark
    record = read_cache(worker.root / "caches" / old.parent.parent.name)
    assert record is not None and record.purged_before is None
    assert worker.mount("checkouts") == old
    assert worker.release(old).stdout == f"released {old}\n"

    proxy.rewrite = None
    applied = worker.sync()
    assert "1 purge request(s), 1 instance(s) deleted" in applied.stdout, applied
    assert not old.exists()


# `purgecache` whose tree removal dies of SIGKILL halfway through (the rename is done).
CRASH_DURING_REMOVAL = """
import os, shutil, signal, sys
from pathlib import Path

def crash_halfway(path, **options):
    entries = sorted(Path(path).rglob("f*"))
    for entry in entries[: len(entries) // 2]:
        entry.unlink()
    os.kill(os.getpid(), signal.SIGKILL)

shutil.rmtree = crash_halfway
from purgecache.cli import main
main(sys.argv[1:], prog_name="purgecache")
"""


def test_a_crash_between_rename_and_removal_leaves_no_half_cache_in_use(
    make_worker: MakeWorker, server: LiveServer, pool: str
) -> None:
    """`agent sync` killed (SIGKILL) halfway through removing a purged instance: the half
    tree is only in the trash, the next task gets a fresh instance, the next sync removes
    the leftover and counts it in its summary."""
    worker = make_worker()
    path = worker.mount("checkouts")
    for i in range(20):
        (path / f"f{i:02}").write_text("x")
    worker.release(path)
    purge(server.root_url, pool, "checkouts")
    command = [sys.executable, "-c", CRASH_DURING_REMOVAL, "agent", "sync", "--pool", pool]
    command += ["--cache-root", str(worker.root)]
    crashed = subprocess.run(command, capture_output=True, text=True, env=worker.environ)
    assert crashed.returncode == -signal.SIGKILL

    (leftover,) = (worker.root / "trash").iterdir()
    assert 0 < len(list(leftover.rglob("f*"))) < 20
    worker.outlast_clock_error()
    fresh = worker.mount("checkouts")
    assert fresh != path and list(fresh.iterdir()) == []
    assert str(path) not in worker.run("list").stdout
    worker.release(fresh)
    result = worker.sync()
    assert result.returncode == 0, result.stderr
    assert f"deleted {path.parent}\n" in result.stdout
    assert "1 instance(s) deleted" in result.stdout
    assert list((worker.root / "trash").iterdir()) == [] and fresh.exists()


def test_watermark_persists_across_agent_restarts(
    make_worker: MakeWorker, server: LiveServer
) -> None:
    """Each sync is a new process, and so is a restarted daemon: they all ask from the
    stored watermark (the service's Date) minus the slack."""
    proxy = RecordingProxy(server.root_url)
    try:
        worker = make_worker(root_url=proxy.root_url)
        assert worker.sync().returncode == 0
        first = worker.watermark()
        assert first is not None and first % 1000 == 0  # a Date header: whole seconds
        time.sleep(1.1)
        assert worker.sync().returncode == 0
        second = worker.watermark()
        assert second is not None and second > first
        daemon = worker.daemon()
        wait_for(lambda: len(proxy.since_values()) == 3)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(10) == 0
        assert proxy.since_values() == [
            None,
            format_time(first - SLACK_MS),
            format_time(second - SLACK_MS),
        ]
    finally:
        proxy.stop()


def _interleaved_medians(rounds: int, *actions: Callable[[], object]) -> list[float]:
    """Median ms of each action, run in turn so that all see the same conditions."""
    times: list[list[float]] = [[] for _ in actions]
    for _ in range(rounds):
        for action, spent in zip(actions, times, strict=True):
            started = time.perf_counter()
            action()
            spent.append((time.perf_counter() - started) * 1000)
    return [statistics.median(spent) for spent in times]


def test_a_no_op_sync_costs_one_request(
    make_worker: MakeWorker, server: LiveServer, pool: str, tmp_path: Path
) -> None:
    """With nothing to purge a sync makes exactly one request (purgeRequests); its time is
    printed beside the service's ping, measured in the same run. The first sync's report
    goes from a detached process (refused 404 by the proxy, which then quiets it): it is
    awaited, so that it cannot land among the second sync's requests."""
    proxy = RecordingProxy(server.root_url)
    try:
        worker = make_worker(root_url=proxy.root_url)
        worker.free_instance("checkouts")
        assert worker.sync().returncode == 0
        ledger = worker.root / "report.json"
        wait_for(lambda: ledger.exists() and "404" in ledger.read_text())
        seen = len(proxy.paths)
        assert worker.sync().returncode == 0
        (path,) = proxy.paths[seen:]
        assert path.startswith(f"/api/purge-cache/v1/purge-cache/{pool.replace('/', '%2F')}?")
    finally:
        proxy.stop()

    environ = {
        "TASKCLUSTER_ROOT_URL": server.root_url,
        "TASKCLUSTER_CLIENT_ID": READER[0],
        "TASKCLUSTER_ACCESS_TOKEN": READER[1],
    }
    registry = CacheRegistry(tmp_path / "timing")
    registry.release(registry.mount("checkouts"))
    with ServiceFetcher(environ) as fetch, PurgeCache.from_env(environ) as client:
        sync_once(registry, fetch, pool)
        client.ping()
        sync_ms, ask_ms, ping_ms = _interleaved_medians(
            100,
            lambda: sync_once(registry, fetch, pool),
            lambda: client.purge_requests(pool),
            client.ping,
        )
    direct = Worker(tmp_path / "cli-timing", pool, server.root_url)
    cli_ping = [sys.executable, "-m", "purgecache", "ping"]
    cli_sync_ms, cli_ping_ms = _interleaved_medians(
        9,
        direct.sync,
        lambda: subprocess.run(cli_ping, capture_output=True, env=direct.environ, check=True),
    )
    print(
        f"\nno-op sync: {sync_ms:.2f} ms in process (its purgeRequests alone {ask_ms:.2f} ms, "
        f"ping {ping_ms:.2f} ms); "
        f"`purgecache agent sync` {cli_sync_ms:.0f} ms (`purgecache ping` {cli_ping_ms:.0f} ms)"
    )

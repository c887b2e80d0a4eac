"""`purgecache agent ...` as a worker's hooks run it: subprocesses, exit statuses, signals."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.conftest import agent_command, clean_environ
from agent.worker import Worker
from purgecache.agent.deadline import DeadlinePassed
from purgecache.agent.fetch import ServiceFetcher

from conftest import LIMITED, READER, LiveServer, free_port


@pytest.fixture
def worker(tmp_path: Path, server: LiveServer) -> Worker:
    """A worker of a pool no other test uses."""
    return Worker(tmp_path / "root", f"p-{uuid.uuid4().hex[:12]}/linux", server.root_url)


def run(*args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    """`purgecache agent ARGS` with only the given TASKCLUSTER_*/PURGECACHE_AGENT_* variables."""
    return subprocess.run(
        agent_command(*args),
        capture_output=True,
        text=True,
        env=clean_environ(**environ),
        timeout=60,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], status: int) -> None:
    """Failed with `status`, an `Error:` line on stderr, no traceback."""
    assert result.returncode == status, result
    assert "Error:" in result.stderr and "Traceback" not in result.stderr


def test_help_lists_the_agent_commands() -> None:
    """`purgecache agent --help` shows every command and the exit statuses."""
    result = run("--help")
    assert result.returncode == 0
    for command in ("mount", "release", "sync", "run", "list"):
        assert f"  {command} " in result.stdout
    assert "3 service unreachable (nothing deleted)" in result.stdout


def test_mount_prints_the_path_last_and_takes_the_root_from_the_environment(
    tmp_path: Path,
) -> None:
    """The last stdout line is the absolute directory; PURGECACHE_AGENT_CACHE_ROOT works."""
    result = run("mount", "checkouts", PURGECACHE_AGENT_CACHE_ROOT=str(tmp_path / "root"))
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.splitlines()[-1])
    assert path.is_absolute() and path.is_dir()
    assert (tmp_path / "root") in path.parents


def test_concurrent_mounts_get_distinct_instances(tmp_path: Path) -> None:
    """Eight tasks starting at once each get their own instance."""
    command = agent_command("mount", "checkouts", "--cache-root", str(tmp_path / "root"))
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=clean_environ())
        for _ in range(8)
    ]
    paths = {process.communicate(timeout=60)[0].splitlines()[-1] for process in processes}
    assert len(paths) == 8
    assert all(process.returncode == 0 for process in processes)


@pytest.mark.parametrize("name", ["", "x" * 4097])
def test_mount_refuses_names_the_service_cannot_hold(tmp_path: Path, name: str) -> None:
    """An empty or over-long cache name is a usage error (2)."""
    assert_one_line_error(run("mount", name, "--cache-root", str(tmp_path)), 2)


def test_release_outside_the_registry_is_a_usage_error(worker: Worker, tmp_path: Path) -> None:
    """Releasing a path that is no instance of this root exits 2."""
    assert_one_line_error(worker.run("release", str(tmp_path)), 2)


def test_release_twice_is_harmless(worker: Worker) -> None:
    """A repeated release (a retried post-task hook) exits 0 and says so."""
    path = worker.mount("checkouts")
    assert worker.run("release", str(path)).stdout == f"released {path}\n"
    again = worker.run("release", str(path))
    assert again.returncode == 0 and "was not in use" in again.stderr


def test_cache_root_that_is_a_file_is_a_configuration_error(tmp_path: Path) -> None:
    """`--cache-root` naming a file exits 2 for every command."""
    (tmp_path / "file").write_text("")
    root = str(tmp_path / "file" / "sub")
    assert_one_line_error(run("mount", "c", "--cache-root", root), 2)
    assert_one_line_error(run("list", "--cache-root", root), 2)


@pytest.mark.parametrize(
    ("arguments", "environ", "message"),
    [
        ([], {}, "Missing option '--pool'"),
        (["--pool", "not-a-pool"], {}, "is not provisionerId/workerType"),
        (["--pool", "p/w"], {}, "TASKCLUSTER_ROOT_URL"),
        (["--pool", "p/w", "--clock-skew", "soon"], {}, "Invalid value for '--clock-skew'"),
    ],
)
def test_sync_usage_and_configuration_errors_exit_2(
    tmp_path: Path, arguments: list[str], environ: dict[str, str], message: str
) -> None:
    """Bad options and missing TASKCLUSTER_* settings exit 2 with a message."""
    result = run("sync", "--cache-root", str(tmp_path), *arguments, **environ)
    assert result.returncode == 2, result
    assert message in result.stderr


@pytest.mark.parametrize(
    "credentials", [("reader", "wrong-token-0123456789"), LIMITED], ids=["401", "403"]
)
def test_sync_refused_by_the_service_exits_2_and_deletes_nothing(
    worker: Worker, server: LiveServer, credentials: tuple[str, str]
) -> None:
    """Wrong credentials or missing scopes: a configuration error (2), caches kept."""
    path = worker.free_instance("checkouts")
    result = worker.sync(
        environ=clean_environ(
            TASKCLUSTER_ROOT_URL=server.root_url,
            TASKCLUSTER_CLIENT_ID=credentials[0],
            TASKCLUSTER_ACCESS_TOKEN=credentials[1],
        )
    )
    assert_one_line_error(result, 2)
    assert "nothing deleted" in result.stderr and path.exists()


def test_sync_of_an_unreachable_service_exits_3_quickly(worker: Worker) -> None:
    """Nobody listening: status 3 within seconds (a pre-task hook must not hang)."""
    path = worker.free_instance("checkouts")
    started = time.monotonic()
    nobody = clean_environ(TASKCLUSTER_ROOT_URL=f"http://127.0.0.1:{free_port()}")
    result = worker.sync(environ=nobody)
    assert_one_line_error(result, 3)
    assert time.monotonic() - started < 10 and path.exists()


@pytest.fixture
def hung_service() -> Iterator[str]:
    """The root URL of a service that takes connections and never answers: a real listening
    socket nobody reads (the kernel completes the handshakes)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_sync_against_a_hung_service_returns_by_its_deadline(
    worker: Worker, hung_service: str
) -> None:
    """`sync --timeout 2s --deadline 2s` against a service that never answers: status 3,
    caches kept, after the deadline plus the interpreter's start (seconds on a loaded
    machine); without a deadline its 4 attempts would take more than 9 s."""
    path = worker.free_instance("checkouts")
    started = time.monotonic()
    hung = clean_environ(TASKCLUSTER_ROOT_URL=hung_service)
    result = worker.sync("--timeout", "2s", "--deadline", "2s", environ=hung)
    elapsed = time.monotonic() - started
    assert_one_line_error(result, 3)
    assert "no answer within the deadline (2 s); caches kept, nothing deleted" in result.stderr
    assert 2 <= elapsed < 7 and path.exists()  # well short of the 9 s of 4 attempts


def test_a_deadline_bounds_the_fetch_and_restores_the_alarm(hung_service: str) -> None:
    """In process: the fetch gives up at its deadline, long before its 5 s timeout,
    and leaves no timer or handler of its own behind."""
    handler = signal.getsignal(signal.SIGALRM)
    environ = {"TASKCLUSTER_ROOT_URL": hung_service}
    with ServiceFetcher(environ, timeout_s=5, deadline_s=0.5) as fetch:
        started = time.monotonic()
        with pytest.raises(DeadlinePassed, match="purgeRequests of a/b: no answer within"):
            fetch("a/b", None)
        assert 0.5 <= time.monotonic() - started < 1.5  # not the 5 s timeout
    assert signal.getsignal(signal.SIGALRM) is handler
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_sync_reads_pool_and_root_from_the_environment_and_works_anonymously(
    tmp_path: Path, server: LiveServer
) -> None:
    """Anonymous scopes suffice for public pools; PURGECACHE_AGENT_POOL/CACHE_ROOT work."""
    result = run(
        "sync",
        TASKCLUSTER_ROOT_URL=server.root_url,
        PURGECACHE_AGENT_POOL="public/linux",
        PURGECACHE_AGENT_CACHE_ROOT=str(tmp_path / "root"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("sync public/linux: ")


def test_list_shows_instances_as_json(worker: Worker) -> None:
    """`agent list --json` names each instance's cache, state and path."""
    busy = worker.mount("checkouts")
    free = worker.free_instance("sccache")
    rows = json.loads(worker.run("list", "--json").stdout)["instances"]
    states = {row["path"]: (row["cache_name"], row["state"]) for row in rows}
    assert states == {str(busy): ("checkouts", "in use"), str(free): ("sccache", "free")}


def test_run_stops_cleanly_on_sigterm(worker: Worker) -> None:
    """The daemon syncs at once, then sleeps; SIGTERM ends it with status 0 at once."""
    daemon = worker.daemon("--interval", "1h")
    try:
        deadline = time.monotonic() + 30
        while "watermark" not in worker.daemon_log.read_text():
            assert time.monotonic() < deadline and daemon.poll() is None
            time.sleep(0.05)
        started = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(10) == 0
        assert time.monotonic() - started < 2
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert worker.daemon_log.read_text().endswith("stopped\n")


def test_run_with_unusable_settings_exits_2(tmp_path: Path) -> None:
    """Without TASKCLUSTER_ROOT_URL the daemon does not start: status 2."""
    result = run("run", "--pool", "p/w", "--cache-root", str(tmp_path))
    assert_one_line_error(result, 2)


def test_credentials_come_from_taskcluster_variables(worker: Worker) -> None:
    """The worker's READER credentials (scope purge-requests::*) are used and accepted."""
    assert worker.environ["TASKCLUSTER_CLIENT_ID"] == READER[0]
    assert worker.sync().returncode == 0

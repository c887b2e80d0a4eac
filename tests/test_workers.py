"""The worker processes of `purgecache serve`: reloads that replace nothing, crashed workers
replaced while the others serve, and one listening socket per port.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from conftest import ADMIN, LiveServer, free_port, log_records, worker_pids
from hawk_signing import HawkAuth

ServerFactory = Callable[..., LiveServer]


class FreshConnections:
    """Clients that open a new connection for every request (`Connection: close`), each
    alternating a signed `purgeRequests` and a signed purge; every outcome is kept."""

    def __init__(self, live: LiveServer, clients: int) -> None:
        self.live = live
        self.statuses: list[int] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(clients)]

    def __enter__(self) -> FreshConnections:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)

    def _run(self, number: int) -> None:
        url = f"{self.live.api}/purge-cache/fresh%2Fpool{number}"
        headers = {"Connection": "close"}
        with httpx.Client(auth=HawkAuth(*ADMIN), headers=headers, timeout=10) as client:
            for index in range(1_000_000):
                if self._stop.is_set():
                    return
                try:
                    if index % 2:
                        response = client.post(url, json={"cacheName": f"c{index}"})
                    else:
                        response = client.get(url)
                except httpx.TransportError as error:  # closed without an answer: dropped
                    self.failures.append(repr(error))
                    continue
                self.statuses.append(response.status_code)

    def rate(self, seconds: float) -> float:
        """Answered requests per second."""
        return len(self.statuses) / seconds


def test_sighup_replaces_no_worker_and_drops_no_connection(
    server_factory: ServerFactory,
) -> None:
    """20 SIGHUPs under 16 clients on fresh connections: every request is answered, and the
    workers serving before are the ones serving after (reloaded in place)."""
    live = server_factory("--workers", "2")
    before = worker_pids(live)
    started = time.monotonic()
    with FreshConnections(live, clients=16) as load:
        for _ in range(20):
            time.sleep(0.3)
            live.process.send_signal(signal.SIGHUP)
        time.sleep(1.0)
    elapsed = time.monotonic() - started
    print(f"answered {len(load.statuses)}, dropped {len(load.failures)} in {elapsed:.1f}s")
    assert not load.failures, f"{len(load.failures)} dropped: {load.failures[:3]}"
    assert set(load.statuses) == {200, 204}
    assert len(load.statuses) > 100
    assert worker_pids(live) == before
    assert live.log_text().count('"event":"clients-reloaded"') >= 1


def wait_for(condition: Callable[[], bool], timeout: float, live: LiveServer) -> None:
    """Poll `condition` until true, failing with the server's log after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, live.log_text()
        time.sleep(0.05)


def test_killed_worker_is_replaced_while_the_other_serves(server_factory: ServerFactory) -> None:
    """kill -9 of one of two workers: the other answers while the supervisor is held still
    (SIGSTOP), the dead one is replaced once it runs, and the crash is one JSON line."""
    live = server_factory("--workers", "2")
    victim, survivor = worker_pids(live)
    live.process.send_signal(signal.SIGSTOP)  # no replacement can start meanwhile
    try:
        os.kill(victim, signal.SIGKILL)
        headers = {"Connection": "close"}
        with httpx.Client(auth=HawkAuth(*ADMIN), headers=headers, timeout=5) as client:
            for _ in range(20):
                assert client.get(f"{live.api}/purge-cache/crash%2Fpool").status_code == 200
    finally:
        live.process.send_signal(signal.SIGCONT)
    wait_for(lambda: len(worker_pids(live)) == 2 and victim not in worker_pids(live), 10, live)
    assert survivor in worker_pids(live)
    wait_for(lambda: bool(log_records(live, "worker-crashed")), 5, live)
    crashes = log_records(live, "worker-crashed")
    assert [(c["pid"], c["signal"], c["action"]) for c in crashes] == [
        (victim, "SIGKILL", "replace")
    ]
    assert httpx.get(f"{live.api}/ping").status_code == 200
    assert live.process.poll() is None


def test_connections_wait_for_the_replacement_of_a_lone_worker(
    server_factory: ServerFactory,
) -> None:
    """kill -9 of the only worker: a new connection waits in the listen backlog (while the
    supervisor is held still) and is answered by the replacement, never refused."""
    live = server_factory()
    (victim,) = worker_pids(live)
    outcome: list[object] = []

    def ping() -> None:
        try:
            outcome.append(httpx.get(f"{live.api}/ping", timeout=30).status_code)
        except httpx.TransportError as error:
            outcome.append(error)

    live.process.send_signal(signal.SIGSTOP)
    try:
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: _is_zombie(victim), 5, live)  # its sockets are closed by now
        caller = threading.Thread(target=ping)
        caller.start()
        caller.join(0.5)
        assert not outcome, outcome  # neither refused nor answered: waiting in the backlog
    finally:
        live.process.send_signal(signal.SIGCONT)
    caller.join(30)
    assert outcome == [200]
    assert victim not in worker_pids(live)
    assert len(log_records(live, "worker-crashed")) == 1


def test_a_worker_crashing_again_at_once_stops_the_service(server_factory: ServerFactory) -> None:
    """A replacement that dies again within seconds is a crash loop: the service exits 1 and
    says why in one line."""
    live = server_factory()
    (first,) = worker_pids(live)
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: bool(worker_pids(live)) and worker_pids(live) != [first], 10, live)
    os.kill(worker_pids(live)[0], signal.SIGKILL)
    assert live.process.wait(15) == 1
    (loop,) = log_records(live, "worker-crash-loop")
    assert (loop["signal"], loop["action"]) == ("SIGKILL", "stop")


def _is_zombie(pid: int) -> bool:
    """Whether a process has exited and waits for its parent to collect it."""
    try:
        return "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True


def test_two_services_started_at_once_on_one_port_do_not_share_it(tmp_path: Path) -> None:
    """Two `serve --workers 2` started at the same moment on one port: one serves, the other
    exits 1 with one line naming the address."""
    port = free_port()
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "purgecache", "serve", "--workers", "2", "--port", str(port),
             "--data-dir", str(tmp_path / name)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for name in ("a", "b")
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while all(process.poll() is None for process in started):
            assert time.monotonic() < deadline, "both services came up on one port"
            time.sleep(0.05)
        (loser,) = [process for process in started if process.poll() is not None]
        (winner,) = [process for process in started if process is not loser]
        _, errors = loser.communicate(timeout=10)
        last = json.loads(errors.splitlines()[-1])
        assert loser.returncode == 1
        assert last["event"] == "startup-failed"
        assert last["error"] == f"cannot listen on 127.0.0.1:{port}: Address already in use"
        assert httpx.get(f"http://127.0.0.1:{port}/api/purge-cache/v1/ping", timeout=10).is_success
        assert winner.poll() is None
    finally:
        for process in started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate(timeout=10)

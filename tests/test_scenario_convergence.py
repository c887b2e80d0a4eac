"""Issue 13 from end to end, as an operator lives it, on SQLite and PostgreSQL: three real
`purgecache agent run` daemons of one pool hold real cache directories; the OFFICIAL
Taskcluster Python client purges one cache through v1 `purgeCache` and `purgecache purge
--reason` another; `purgecache history` shows both with who and why; the agents delete their
copies and `purgecache status` shows every worker applied it and the bytes freed; one agent is
stopped, and after a new purge it is the straggler that `status` and `purge --wait` name; a
worker that only reads `purgeRequests` through the official client counts as fetched.

Only the CLI is asserted on (output and exit codes), as a user at a shell would see it."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.worker import Worker
from test_history_clients import cli
from test_official_clients import run_client

from conftest import CLIENTS_TOML, LiveServer

POOL = "scenario/linux"
PURGER = ("purger", "purger-token-0123456789")  # purges with the official client
AGENT = ("agent", "agent-token-0123456789")  # every agent of the pool shares it
GW = ("gw", "gw-token-0123456789")  # only fetches, as the official generic-worker does
SCOPES = {
    PURGER: [f"purge-cache:{POOL}:*"],
    AGENT: [f"purge-cache:purge-requests::{POOL}", f"purge-cache:report::{POOL}:local/*"],
    GW: [f"purge-cache:purge-requests::{POOL}"],
}
CLIENTS = CLIENTS_TOML + "".join(
    f'[[clients]]\nclient_id = "{c}"\naccess_token = "{t}"\nscopes = {json.dumps(scopes)}\n'
    for (c, t), scopes in SCOPES.items()
)
COPY = b"x" * 64_000  # what a task leaves in each cache copy
LAST_SEEN = re.compile(r"last seen (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\)")


class Agent(Worker):
    """A worker whose `purgecache agent run` syncs every 200 ms and reports (at least every
    second) as `local/<root name>`, with the credentials all agents of the pool share."""

    def __init__(self, root: Path, root_url: str) -> None:
        settings = {"PURGECACHE_AGENT_WORKER_ID": root.name, "PURGECACHE_AGENT_INTERVAL": "200ms"}
        super().__init__(root, POOL, root_url, AGENT, settings)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """`agent run` in the background, reporting at least every second."""
        self.process = self.daemon("--report-interval", "1s")

    def stop(self) -> None:
        """SIGTERM, as a shutting-down worker does: the daemon exits 0 and says so."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.terminate()
        assert self.process.wait(10) == 0
        log = self.daemon_log.read_text()
        assert log.endswith("stopped\n") and "Traceback" not in log, log

    def hold(self, cache_name: str) -> Path:
        """A copy of `cache_name` a finished task left: COPY written, then released."""
        path = self.mount(cache_name)
        (path / "content").write_bytes(COPY)
        self.release(path)
        return path


def table(output: str) -> dict[str, dict[str, str]]:
    """`purgecache status`'s table: a row of columns per cache name."""
    header, *rows = output.splitlines()
    names = re.split(r"\s{2,}", header)
    found = {}
    for row in rows:
        if row.startswith(" ") or row.endswith(":"):  # the stragglers under the table
            break
        cells = dict(zip(names, re.split(r"\s{2,}", row), strict=True))
        found[cells["CACHE"]] = cells
    return found


def until(
    check: Callable[[], subprocess.CompletedProcess[str]], done: Callable[[str], bool]
) -> str:
    """Run `check` until its output satisfies `done` (fails after 10 s); that output."""
    deadline = time.monotonic() + 10
    while True:
        result = check()
        assert result.returncode == 0, result.stderr
        if done(result.stdout):
            return result.stdout
        assert time.monotonic() < deadline, result.stdout
        time.sleep(0.1)


def serve(factory: Callable[..., LiveServer], tmp_path: Path, *extra: str) -> LiveServer:
    """A server started by `factory` with `extra` arguments, knowing the purger, the agents'
    and the fetcher's clients."""
    data_dir = tmp_path / "service"
    data_dir.mkdir()
    (data_dir / "test-clients.toml").write_text(CLIENTS)
    return factory(*extra, data_dir=data_dir)


@contextlib.contextmanager
def running(live: LiveServer, tmp_path: Path, count: int) -> Iterator[list[Agent]]:
    """`count` agents of POOL, their daemons running (each stopped and checked at the end)."""
    workers = [Agent(tmp_path / f"w{i}", live.root_url) for i in range(count)]
    try:
        for worker in workers:
            worker.start()
        yield workers
    finally:
        for worker in workers:
            if worker.process is not None:
                worker.stop()


@pytest.fixture
def live(backend_server_factory: Callable[..., LiveServer], tmp_path: Path) -> LiveServer:
    """A server (each backend) knowing the purger, the agents' and the fetcher's clients."""
    return serve(backend_server_factory, tmp_path)


@pytest.fixture
def agents(live: LiveServer, tmp_path: Path) -> Iterator[list[Agent]]:
    """Three agents of POOL, their daemons running (each stopped and checked at the end)."""
    with running(live, tmp_path, 3) as workers:
        yield workers


def official_client(
    live: LiveServer, credentials: tuple[str, str], call: dict[str, object]
) -> object:
    """One v1 call through the official `taskcluster` 113 client; its result."""
    (outcome,) = run_client("tc113", live, "calls", [call], credentials=credentials)
    assert "result" in outcome, outcome
    return outcome["result"]


def test_purge_history_convergence_and_stragglers(live: LiveServer, agents: list[Agent]) -> None:
    """From one official-client purge and one `purge --reason` to history, applied 3/3 with
    the bytes freed, a stopped agent named as not seen by `status` and `purge --wait` (exit
    6), and a fetch-only worker counted as fetched."""
    run = cli(live.root_url)
    held = {(a.root.name, name): a.hold(name) for a in agents for name in ("checkouts", "sccache")}

    official_client(
        live, PURGER, {"method": "purgeCache", "pool": POOL, "payload": {"cacheName": "checkouts"}}
    )
    reason = "sccache corrupt after the 2.3 upgrade"
    purged = run("purge", POOL, "sccache", "--reason", reason)
    assert (purged.returncode, purged.stdout) == (0, f"purged sccache on {POOL}\n"), purged.stderr

    history = run("history", POOL)
    assert history.returncode == 0, history.stderr
    header, *events = history.stdout.splitlines()
    assert header.split() == [
        *("TIME", "WORKER", "POOL", "CACHE", "CLIENT", "VIA", "POLICY", "ENDED", "REASON")
    ]
    assert [e.split()[1:5] for e in events] == [
        [POOL, "sccache", "admin", "createPurge"],
        [POOL, "checkouts", "purger", "purgeCache"],
    ]
    assert events[0].endswith(reason)
    # the normal policy (POLICY -), open (ENDED -), no reason given
    assert events[1].split()[-3:] == ["purgeCache", "-", "-"]
    assert not events[1].endswith(" ")

    converged = until(
        lambda: run("status", POOL),
        lambda out: [row["APPLIED"] for row in table(out).values()] == ["3", "3"],
    )
    rows = table(converged)
    assert sorted(rows) == ["checkouts", "sccache"]
    for row in rows.values():
        assert (row["ACTIVE"], row["APPLIED"], row["NOT SEEN"]) == ("3", "3", "0"), converged
        assert 3 * len(COPY) <= int(row["FREED"].removesuffix(" B")) < 4 * len(COPY)
    assert not any(path.exists() for path in held.values())

    agents[2].stop()  # from now on it neither syncs nor reports
    waited = run("purge", POOL, "checkouts", "--wait", "--timeout", "5s")  # 25 syncs of the others
    assert waited.returncode == 6, (waited.stdout, waited.stderr)
    assert "not converged checkouts: applied 2/3" in waited.stdout
    (straggler,) = [line for line in waited.stdout.splitlines() if line.startswith("  ")]
    assert straggler.startswith("  worker local/w2: not seen (last seen "), straggler
    last_seen = LAST_SEEN.search(straggler)
    assert last_seen is not None, straggler

    status = run("status", POOL, "checkouts")
    row = table(status.stdout)["checkouts"]
    assert (row["ACTIVE"], row["APPLIED"], row["NOT SEEN"]) == ("3", "2", "1"), status.stdout
    assert last_seen[1] < row["BEFORE"]  # heard from before the purge, not since
    assert f"  worker local/w2: not seen (last seen {last_seen[1]})" in status.stdout

    official_client(live, GW, {"method": "purgeRequests", "pool": POOL})
    fetched = until(
        lambda: run("status", POOL, "checkouts"),
        lambda out: table(out)["checkouts"]["FETCHED"] == "1",
    )
    assert table(fetched)["checkouts"]["ACTIVE"] == "4"
    assert "client id gw: fetched, not confirmed (last seen" in fetched

"""Issue 16's `--until-applied` from end to end, on SQLite and PostgreSQL: two real
`purgecache agent run` daemons of one pool hold a copy of a cache each and report; one is
stopped (its state directory kept); `purgecache purge --until-applied` keeps the purge served
past a 1 s retention, through the expiry job, while the stopped agent has not applied it, and
a purge made without it under the same retention ends; the stopped agent, started again,
deletes its copy and reports, and the next expiry job ends the purge as converged.

Asserted on through the CLI only (output and exit codes), as an operator at a shell would see
it, and on the cache copies on the workers' disks."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from test_history_clients import cli, json_lines
from test_scenario_convergence import POOL, Agent, running, serve, table, until

from conftest import LiveServer
from support.commands import run_cli

RETENTION_S = 1.0


@pytest.fixture
def live(backend_server_factory: Callable[..., LiveServer], tmp_path: Path) -> LiveServer:
    """A server (each backend) with a 1 s retention, an activity window no agent leaves
    during the test, and no pool served from memory (the expiry job runs in another
    process)."""
    extra = ("--retention=1s", "--activity-window=1h", "--cache-time=0s")
    return serve(backend_server_factory, tmp_path, *extra)


@pytest.fixture
def agents(live: LiveServer, tmp_path: Path) -> Iterator[list[Agent]]:
    """Two agents of POOL, their daemons running (each stopped and checked at the end)."""
    with running(live, tmp_path, 2) as workers:
        yield workers


def expire(live: LiveServer) -> None:
    """One run of the expiry job, as cron runs it (`purgecache expire`) on the server's
    database."""
    if "--db" in live.args:  # PostgreSQL
        database = ["--db", live.args[live.args.index("--db") + 1]]
    else:
        database = ["--data-dir", str(live.data_dir)]
    result = run_cli("expire", *database, "--activity-window=1h")
    assert result.returncode == 0, result.stderr


def holders(output: str) -> dict[str, int]:
    """How many active workers hold each cache, by `purgecache caches POOL --json`."""
    return {cache["cacheName"]: cache["workers"] for cache in json.loads(output)["caches"]}


def ends(run: Callable[..., subprocess.CompletedProcess[str]]) -> dict[str, str | None]:
    """How the latest purge of each cache of POOL ended, by `purgecache history --json`
    (None: open)."""
    found: dict[str, str | None] = {}
    for event in json_lines(run("history", POOL, "--json")):  # newest first
        found.setdefault(event["cacheName"], event.get("endReason"))
    return found


def served(run: Callable[..., subprocess.CompletedProcess[str]]) -> list[str]:
    """The cache names `purgecache requests POOL --json` (v1 `purgeRequests`) serves."""
    result = run("requests", POOL, "--json")
    assert result.returncode == 0, result.stderr
    return [entry["cacheName"] for entry in json.loads(result.stdout)["requests"]]


def test_an_until_applied_purge_outlives_the_retention_until_the_last_agent_reports(
    live: LiveServer, agents: list[Agent]
) -> None:
    """`purge --until-applied` stays served (open in the history) past the retention and the
    expiry job while a stopped agent has not applied it, where a plain purge made beside it
    ends `expired`; once that agent runs again, deletes its copy and reports, the expiry job
    ends it `converged` and it is served no more."""
    run = cli(live.root_url)
    running_agent, stopped_agent = agents
    copies = [agent.hold("checkouts") for agent in agents]
    until(lambda: run("caches", POOL, "--json"), lambda out: holders(out) == {"checkouts": 2})
    stopped_agent.stop()  # active (it reported), but neither syncs nor reports from now on

    kept = run("purge", POOL, "checkouts", "--until-applied")
    assert kept.returncode == 0, kept.stderr
    plain = run("purge", POOL, "sccache")
    assert plain.returncode == 0, plain.stderr
    made = time.monotonic()  # both purges' retention runs from before now
    applied = until(
        lambda: run("status", POOL, "checkouts"),
        lambda out: table(out)["checkouts"]["APPLIED"] == "1",
    )
    assert table(applied)["checkouts"]["ACTIVE"] == "2", applied
    assert [copy.exists() for copy in copies] == [False, True]

    time.sleep(max(0.0, made + RETENTION_S + 0.1 - time.monotonic()))
    expire(live)
    assert served(run) == ["checkouts"]
    assert ends(run) == {"checkouts": None, "sccache": "expired"}

    stopped_agent.start()  # the same cache root and state directory
    until(
        lambda: run("status", POOL, "checkouts"),
        lambda out: table(out)["checkouts"]["APPLIED"] == "2",
    )
    assert not copies[1].exists()
    expire(live)
    assert served(run) == []
    assert ends(run) == {"checkouts": "converged", "sccache": "expired"}
    assert running_agent.process is not None and running_agent.process.poll() is None

"""Selector purges end to end (issue 16, items 1, 3 and 4): `purgecache purge --match` lists
what a selector matches (`--dry-run`, nothing changes for an OFFICIAL Taskcluster client
reading `purgeRequests`), refuses to purge past the confirm threshold without `--yes`, and
with it purges every pair as concrete requests the official client sees; the history names
the selector; bare names stay literal. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from test_history_clients import cli, json_lines
from test_official_clients import run_client

from conftest import ADMIN, LiveServer, db_args, start_server
from hawk_signing import HawkAuth


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One server per backend for the module, confirming selector purges past 2 pairs."""
    data = tmp_path_factory.mktemp("selector-e2e")
    server = start_server(data, *db_args(request.param), "--selector-confirm-threshold", "2")
    yield server
    server.stop()


def official_requests(live: LiveServer, pool: str) -> list[str]:
    """The cache names the official Python client (taskcluster 113) reads for `pool`."""
    call = {"method": "purgeRequests", "pool": pool}
    (answer,) = run_client("tc113", live, "calls", [call])
    return sorted(request["cacheName"] for request in answer["result"]["requests"])


def test_bare_names_stay_literal(live: LiveServer) -> None:
    """`purge POOL 'a*'` purges the cache named `a*`, not `ab`, which is merely known."""
    run = cli(live.root_url)
    assert run("purge", "lit/pool", "ab").returncode == 0
    done = run("purge", "lit/pool", "a*")
    assert (done.returncode, done.stdout) == (0, "purged a* on lit/pool\n"), done.stderr
    events = json_lines(run("history", "lit/pool", "--json"))
    assert [event["cacheName"] for event in events] == ["a*", "ab"]
    assert all("selector" not in event for event in events)


def test_match_dry_run_then_yes_reaches_the_official_client(live: LiveServer) -> None:
    """--dry-run prints the pairs and the digest and changes nothing the official client
    reads; without --yes 3 pairs (> 2) are refused, exit 1; with --yes they are purged as
    concrete requests; the history names the selector of each."""
    run = cli(live.root_url)
    for pool, cache in (("sel-a/linux", "level-3-x"), ("sel-a/win", "level-3-y")):
        assert run("purge", pool, cache).returncode == 0
    assert run("purge", "sel-a/win", "level-1").returncode == 0
    before = official_requests(live, "sel-a/linux")
    dry = run("purge", "--match", "sel-a/*", "level-3-*", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert lines[0].split() == ["WORKER", "POOL", "CACHE", "WORKERS", "BYTES"]
    assert [line.split()[:2] for line in lines[1:3]] == [
        ["sel-a/linux", "level-3-x"],
        ["sel-a/win", "level-3-y"],
    ]
    assert lines[3].startswith("2 caches on 2 pools") and "digest sha256:" in lines[3]
    assert official_requests(live, "sel-a/linux") == before == ["level-3-x"]
    assert run("purge", "sel-b/linux", "level-3-z").returncode == 0
    assert run("purge", "sel-a/linux", "level-3-new").returncode == 0
    refused = run("purge", "--match", "sel-a/*", "level-3-*")
    assert refused.returncode == 1
    assert "review them with --dry-run" in refused.stderr and "--yes" in refused.stderr
    history = json_lines(run("history", "sel-a/linux", "--json"))
    assert all("selector" not in event for event in history)
    done = run("purge", "--match", "sel-a/*", "level-3-*", "--yes", "--reason", "toolchain")
    assert done.returncode == 0, done.stderr
    assert "3 caches on 2 pools" in done.stdout and "purged 3 caches" in done.stdout
    assert official_requests(live, "sel-a/linux") == ["level-3-new", "level-3-x"]
    assert official_requests(live, "sel-a/win") == ["level-1", "level-3-y"]
    latest = json_lines(run("history", "sel-a/win", "--json"))[0]
    assert latest["cacheName"] == "level-3-y"
    assert latest["selector"] == {"workerPoolPattern": "sel-a/*", "cacheNamePattern": "level-3-*"}
    assert (latest["endpoint"], latest["reason"]) == ("createSelectorPurge", "toolchain")


def test_match_json_and_usage_errors(live: LiveServer) -> None:
    """--json prints the service's answer; a bad pattern or --dry-run without --match is a
    usage error (exit 2) and sends nothing."""
    run = cli(live.root_url)
    shown = run("purge", "--match", "none/*", "x?", "--dry-run", "--json")
    assert shown.returncode == 0, shown.stderr
    answer = json.loads(shown.stdout)
    assert (answer["pairs"], answer["dryRun"], answer["applied"]) == ([], True, False)
    bad = run("purge", "--match", "a/**", "x")
    assert bad.returncode == 2 and "** is not supported" in bad.stderr
    assert run("purge", "a/b", "x", "--dry-run").returncode == 2
    assert httpx.get(f"{live.api}/ping", timeout=5).status_code == 200


def test_until_applied_flags_reach_the_service(live: LiveServer) -> None:
    """`purge POOL CACHE --until-applied` keeps that purge until applied (the service's
    default is off); `--match ... --until-applied` does so for each pair; `--match ...
    --no-until-applied` purges its pairs again but shortens neither."""
    run = cli(live.root_url)
    pool = "ua-cli/pool"

    def kept_until_applied(cache: str) -> bool:
        url = f"{live.api}/ext/status/{pool.replace('/', '%2F')}"
        query = {"cacheName": cache}
        answer = httpx.get(url, params=query, auth=HawkAuth(*ADMIN), timeout=10).json()
        return bool(answer["purges"][0].get("untilApplied"))

    done = run("purge", pool, "kept", "--until-applied")
    assert done.returncode == 0, done.stderr
    assert run("purge", pool, "plain").returncode == 0
    assert (kept_until_applied("kept"), kept_until_applied("plain")) == (True, False)
    upgraded = run("purge", "--match", "ua-cli/*", "p*", "--until-applied")
    assert upgraded.returncode == 0, upgraded.stderr
    assert kept_until_applied("plain")
    normal = run("purge", "--match", "ua-cli/*", "*", "--no-until-applied")
    assert normal.returncode == 0, normal.stderr
    assert "purged 2 caches" in normal.stdout
    assert (kept_until_applied("kept"), kept_until_applied("plain")) == (True, True)

"""Convergence over HTTP (issue 13, items 4 and 5): receipts and fetches from several
server processes on one database make `purgeStatus` (applied, fetched, not seen) and the
`status` and `purge --wait` commands. SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import purgecache
from purgecache.model import OBSERVER_HEADER
from test_api import assert_error
from test_history_clients import cli

from conftest import ADMIN, CLIENTS_TOML, LiveServer, db_args, start_server
from hawk_signing import HawkAuth

AGENT = ("agent", "agent-token-0123456789")  # reports and fetches, as the purgecache agent
GW = ("gw", "gw-token-0123456789")  # only fetches, as the official generic-worker
CLIENTS = (
    CLIENTS_TOML
    + f"""
[[clients]]
client_id = "{AGENT[0]}"
access_token = "{AGENT[1]}"
scopes = ["purge-cache:report::cv/*", "purge-cache:purge-requests::cv/*"]

[[clients]]
client_id = "{GW[0]}"
access_token = "{GW[1]}"
scopes = ["purge-cache:purge-requests::cv/*"]
"""
)
LONG_AGO = "2026-01-01T00:00:00.000Z"
FAR_AHEAD = "2099-01-01T00:00:00.000Z"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two server processes on one database (as replicas behind a load balancer)."""
    first_dir, second_dir = (tmp_path_factory.mktemp(f"converge-{n}") for n in "ab")
    for data in (first_dir, second_dir):
        (data / "test-clients.toml").write_text(CLIENTS)
    args = db_args(request.param) or ["--db", f"sqlite:///{Path(first_dir, 'purgecache.db')}"]
    first = start_server(first_dir, *args)
    try:
        second = start_server(second_dir, *args)
        try:
            yield first, second
        finally:
            second.stop()
    finally:  # also when the second fails to start: the first must not outlive the test
        first.stop()


def api(live: LiveServer, method: str, path: str, creds: Any, **kw: Any) -> httpx.Response:
    auth = None if creds is None else HawkAuth(*creds)
    return httpx.request(method, f"{live.api}/{path}", auth=auth, timeout=10, **kw)


def report(live: LiveServer, pool: str, worker: str, before: str, in_use: int = 0) -> None:
    receipt = {"cacheName": "c", "honouredBefore": before, "instancesDeleted": 3}
    receipt |= {"bytesFreed": 3000, "failures": 0, "inUse": in_use}
    body = {"workerGroup": "local", "workerId": worker, "caches": [receipt]}
    answer = api(live, "POST", f"ext/report/{pool.replace('/', '%2F')}", AGENT, json=body)
    assert answer.status_code == 204, answer.text


def status(live: LiveServer, pool: str) -> dict[str, Any]:
    answer = api(live, "GET", f"ext/status/{pool.replace('/', '%2F')}?cacheName=c", ADMIN)
    assert answer.status_code == 200, answer.text
    purges: list[dict[str, Any]] = answer.json()["purges"]
    assert len(purges) == 1, purges
    return purges[0]


def until(check: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool]) -> float:
    """Seconds until `check()` satisfies `done` (fails after 5 s)."""
    start = time.monotonic()
    while not done(seen := check()):
        assert time.monotonic() - start < 5, seen
        time.sleep(0.05)
    return time.monotonic() - start


def test_status_counts_applied_fetched_and_not_seen_across_processes(
    pair: tuple[LiveServer, LiveServer],
) -> None:
    """A worker that reported before the purge is not seen (with its last report time); one
    whose receipt honours the purge is applied (its copy in use shown apart), visible on the
    other process within 1 s; a client id that only fetched the purge is fetched; the
    reporting agent's own fetches do not make it a second worker."""
    first, second = pair
    pool = "cv/one"
    report(first, pool, "w2", LONG_AGO)
    assert api(first, "POST", "purge-cache/cv%2Fone", ADMIN, json={"cacheName": "c"}).is_success
    before = status(second, pool)["before"]
    assert api(first, "GET", "purge-cache/cv%2Fone", AGENT).status_code == 200
    report(first, pool, "w1", before, in_use=1)
    assert until(lambda: status(second, pool), lambda s: s["applied"] == 1) < 1.0
    assert api(second, "GET", "purge-cache/cv%2Fone", GW).status_code == 200
    until(lambda: status(first, pool), lambda s: s["fetched"] == 1)  # flushed within ~1 s
    seen = status(second, pool)
    tally = {k: seen[k] for k in ("activeWorkers", "applied", "appliedInUse", "fetched")}
    assert tally == {"activeWorkers": 3, "applied": 1, "appliedInUse": 1, "fetched": 1}
    assert (seen["notSeen"], seen["instancesDeleted"], seen["bytesFreed"]) == (1, 3, 3000)
    stragglers = {s["worker"]: (s["identity"], s["state"]) for s in seen["stragglers"]}
    assert stragglers == {"local/w2": ("worker", "notSeen"), "gw": ("clientId", "fetched")}
    assert seen["stragglersOmitted"] == 0


def test_anonymous_reads_are_not_counted(pair: tuple[LiveServer, LiveServer]) -> None:
    """A purge read anonymously (public pools) is served but nobody counts as a worker."""
    first, _ = pair
    assert api(first, "POST", "purge-cache/public%2Fx", ADMIN, json={"cacheName": "c"}).is_success
    assert api(first, "GET", "purge-cache/public%2Fx", None).status_code == 200
    time.sleep(1.3)  # past a flush
    assert status(first, "public/x")["activeWorkers"] == 0


def test_someone_looking_is_not_counted_as_a_worker(pair: tuple[LiveServer, LiveServer]) -> None:
    """A purgeRequests call with the observer header (the admin page's, `purgecache requests`)
    is answered like any other but its client id is not a fetching worker, so an operator
    looking at a pool never holds up `purge --wait`; the same call without it counts."""
    first, _ = pair
    pool, path = "cv/look", "purge-cache/cv%2Flook"
    assert api(first, "POST", path, ADMIN, json={"cacheName": "c"}).is_success
    looked = api(first, "GET", path, ADMIN, headers={OBSERVER_HEADER: "1"})
    assert looked.status_code == 200 and looked.json()["requests"][0]["cacheName"] == "c"
    listed = cli(first.root_url)("requests", pool)
    assert listed.returncode == 0 and "c" in listed.stdout, listed.stderr
    time.sleep(1.3)  # past a flush
    assert status(first, pool)["activeWorkers"] == 0
    assert api(first, "GET", path, GW).status_code == 200
    until(lambda: status(first, pool), lambda s: s["fetched"] == 1)


def test_the_page_sends_the_observer_header() -> None:
    """The admin page's purgeRequests names the header the service knows (one name)."""
    script = (Path(purgecache.__file__).parent / "web" / "static" / "api.js").read_text()
    assert f'export const OBSERVER_HEADER = "{OBSERVER_HEADER}";' in script
    assert 'headers: { [OBSERVER_HEADER]: "1" }' in script


def test_status_needs_the_pool_history_scope(pair: tuple[LiveServer, LiveServer]) -> None:
    """purgeStatus is read with purge-cache:history::<pool>: a worker's credential is 403."""
    refused = api(pair[0], "GET", "ext/status/cv%2Fone", GW)
    assert (
        "purge-cache:history::cv/one" in assert_error(refused, 403, "InsufficientScopes")["message"]
    )


def test_cli_status_and_purge_wait(pair: tuple[LiveServer, LiveServer]) -> None:
    """`status` prints the table and the API's JSON; `purge --wait` exits 6 with the
    stragglers when the timeout passes (or too few workers applied), 0 once every active
    worker applied it."""
    first, second = pair
    run = cli(first.root_url)
    pool = "cv/two"
    report(second, pool, "w3", LONG_AGO)
    waited = run("purge", pool, "c", "--wait", "--timeout", "1s")
    assert waited.returncode == 6, waited.stderr
    assert "applied 0/1" in waited.stdout and "worker local/w3: not seen" in waited.stdout
    table = run("status", pool)
    assert table.returncode == 0, table.stderr
    assert table.stdout.split("\n")[0].split()[:4] == ["CACHE", "BEFORE", "ACTIVE", "APPLIED"]
    report(second, pool, "w3", FAR_AHEAD)
    as_json = run("status", pool, "c", "--json")
    assert '"applied": 1' in as_json.stdout, as_json.stdout
    assert run("purge", pool, "c", "--wait", "--min-workers", "1").returncode == 0
    too_few = run("purge", pool, "c", "--wait", "--timeout", "1s", "--min-workers", "2")
    assert too_few.returncode == 6 and "applied 1/1" in too_few.stdout


def test_pool_caches_sum_the_reported_inventories(pair: tuple[LiveServer, LiveServer]) -> None:
    """Workers' inventories (an optional part of reportWorkerSync) make `poolCaches` and
    `purgecache caches`: per cache name, workers holding it, copies, bytes, latest use; a
    name listed twice is a 400."""
    first, second = pair
    pool, route = "cv/inv", "ext/report/cv%2Finv"
    for worker, size in (("w1", 100), ("w2", 50)):
        held = [{"cacheName": "ck", "instances": 1, "bytes": size, "lastUsed": LONG_AGO}]
        body = {"workerGroup": "local", "workerId": worker, "inventory": held}
        assert api(first, "POST", route, AGENT, json=body).status_code == 204
    twice = {"workerGroup": "local", "workerId": "w1", "inventory": [held[0], held[0]]}
    assert_error(api(first, "POST", route, AGENT, json=twice), 400, "InputError")
    answer = api(second, "GET", "ext/caches/cv%2Finv", ADMIN).json()
    assert answer["caches"] == [
        {"cacheName": "ck", "workers": 2, "instances": 2, "bytes": 150, "lastUsed": LONG_AGO}
    ]
    table = cli(second.root_url)("caches", pool)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[1].split() == ["ck", "2", "2", "150", LONG_AGO]

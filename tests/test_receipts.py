"""Workers' receipts over HTTP (issue 13, item 3, the service side): `reportWorkerSync` keeps
one receipt per worker and cache name, idempotently, under the worker's own report scope, with
clear 400s for malformed reports. SQLite and PostgreSQL, read back through the storage."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from purgecache.model import CacheInventory, CacheReceipt
from purgecache.storage import Storage, open_storage
from test_api import assert_error

from conftest import ADMIN, CLIENTS_TOML, LiveServer, db_args, start_server
from hawk_signing import HawkAuth

REPORTER = ("reporter", "reporter-token-0123456789")
CLIENTS = (
    CLIENTS_TOML
    + f"""
[[clients]]
client_id = "{REPORTER[0]}"
access_token = "{REPORTER[1]}"
scopes = ["purge-cache:report::rc-a/linux:local/w1"]
"""
)
BEFORE = "2026-05-01T10:00:00.000Z"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server per backend whose clients file adds a worker allowed to report as local/w1."""
    data = tmp_path_factory.mktemp("receipts")
    (data / "test-clients.toml").write_text(CLIENTS)
    server = start_server(data, *db_args(request.param))
    yield server
    server.stop()


def stored(live: LiveServer, pool: str) -> list[tuple[str, str, CacheReceipt]]:
    """The pool's receipts as the server's database holds them."""
    url = live.args[live.args.index("--db") + 1] if "--db" in live.args else None

    async def read() -> list[tuple[str, str, CacheReceipt]]:
        storage: Storage = open_storage(url or f"sqlite:///{live.db_path}")
        try:
            rows = await storage.worker_receipts(pool)
        finally:
            await storage.close()
        return [(r.worker_group, r.worker_id, r.receipt) for r in rows]

    return asyncio.run(read())


def report(
    live: LiveServer, body: dict[str, Any], credentials: tuple[str, str] = REPORTER
) -> httpx.Response:
    return httpx.post(
        f"{live.api}/ext/report/rc-a%2Flinux", json=body, auth=HawkAuth(*credentials), timeout=10
    )


def receipt(name: str, **fields: Any) -> dict[str, Any]:
    base = {"cacheName": name, "honouredBefore": BEFORE, "instancesDeleted": 2}
    return base | {"bytesFreed": 2048, "failures": 0, "inUse": 1} | fields


def test_a_report_is_kept_per_worker_and_cache_and_replays_change_nothing(
    live: LiveServer,
) -> None:
    """204; one receipt per cache name; the same report again, or one about an older purge,
    leaves them as they are; a later purge's receipt replaces its cache's."""
    body = {
        "workerGroup": "local",
        "workerId": "w1",
        "caches": [receipt("a"), receipt("b", oldestDeletedAgeMs=9)],
    }
    for _ in range(2):
        answer = report(live, body)
        assert (answer.status_code, answer.content) == (204, b""), answer.text
    first = stored(live, "rc-a/linux")
    assert [(group, worker, r.cache_name) for group, worker, r in first] == [
        ("local", "w1", "a"),
        ("local", "w1", "b"),
    ]
    assert first[1][2] == CacheReceipt("b", 1777629600000, 2, 2048, 9, 0, 1)
    older = {**body, "caches": [receipt("a", honouredBefore="2026-04-01T00:00:00.000Z", inUse=0)]}
    assert report(live, older).status_code == 204
    later = {**body, "caches": [receipt("b", honouredBefore="2026-06-01T00:00:00.000Z", inUse=0)]}
    assert report(live, later).status_code == 204
    after = {r.cache_name: r for _, _, r in stored(live, "rc-a/linux")}
    assert after["a"] == first[0][2]
    assert (after["b"].in_use, after["b"].honoured_before) == (0, 1780272000000)


def inventory_of(live: LiveServer, pool: str) -> list[tuple[str, CacheInventory]]:
    """The pool's inventories as the server's database holds them."""
    url = live.args[live.args.index("--db") + 1] if "--db" in live.args else None

    async def read() -> list[tuple[str, CacheInventory]]:
        storage: Storage = open_storage(url or f"sqlite:///{live.db_path}")
        try:
            rows = await storage.worker_inventory(pool)
        finally:
            await storage.close()
        return [(r.worker_id, r.inventory) for r in rows]

    return asyncio.run(read())


def test_an_inventory_replaces_the_workers_and_a_report_without_one_keeps_it(
    live: LiveServer,
) -> None:
    """204; the inventory's entries are stored as sent (lastUsed optional); a later report
    without `inventory` leaves them; one with an inventory replaces them."""
    held = [
        {"cacheName": "a", "instances": 2, "bytes": 4096, "lastUsed": BEFORE},
        {"cacheName": "b", "instances": 1, "bytes": 0},
    ]
    body = {"workerGroup": "local", "workerId": "w1", "inventory": held}
    assert report(live, body).status_code == 204
    assert report(live, {"workerGroup": "local", "workerId": "w1"}).status_code == 204
    assert inventory_of(live, "rc-a/linux") == [
        ("w1", CacheInventory("a", 2, 4096, 1777629600000)),
        ("w1", CacheInventory("b", 1, 0, None)),
    ]
    assert report(live, {**body, "inventory": held[1:]}).status_code == 204
    assert inventory_of(live, "rc-a/linux") == [("w1", CacheInventory("b", 1, 0, None))]


def test_a_worker_reports_only_as_itself(live: LiveServer) -> None:
    """The scope names the worker: reporting as another worker is 403 naming its scope."""
    refused = report(live, {"workerGroup": "local", "workerId": "w2"})
    body = assert_error(refused, 403, "InsufficientScopes")
    assert "purge-cache:report::rc-a/linux:local/w2" in body["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"workerGroup": "local", "workerId": "has space"},
        {"workerGroup": "local", "workerId": "x" * 39},
        {"workerGroup": "local", "workerId": "w1", "caches": [receipt("a", bytesFreed=-1)]},
        {"workerGroup": "local", "workerId": "w1", "caches": [receipt("a", honouredBefore="soon")]},
        {
            "workerGroup": "local",
            "workerId": "w1",
            "caches": [receipt("a", honouredBefore="2026-13-45T00:00:00Z")],
        },
        {"workerGroup": "local", "workerId": "w1", "caches": [receipt("a", extra=1)]},
        {"workerGroup": "local", "workerId": "w1", "caches": [receipt("a"), receipt("a")]},
        {
            "workerGroup": "local",
            "workerId": "w1",
            "caches": [receipt(f"c{i}") for i in range(501)],
        },
        {"workerGroup": "local", "workerId": "w1", "caches": "a"},
        {"workerId": "w1"},
        {"workerGroup": "local", "workerId": "w1", "inventory": [{"cacheName": "a"}]},
        {
            "workerGroup": "local",
            "workerId": "w1",
            "inventory": [{"cacheName": "a", "instances": 1, "bytes": 1, "lastUsed": "now"}],
        },
        {
            "workerGroup": "local",
            "workerId": "w1",
            "inventory": [{"cacheName": "a", "instances": 1, "bytes": 0}] * 2,
        },
    ],
    ids=range(13),
)
def test_malformed_reports_are_400(live: LiveServer, body: dict[str, Any]) -> None:
    """Each malformed report is a Taskcluster 400 (never a 500), and nothing is kept."""
    answer = report(live, body, ADMIN)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] in ("InputValidationError", "InputError")
    assert all(worker == "w1" for _, worker, _ in stored(live, "rc-a/linux"))

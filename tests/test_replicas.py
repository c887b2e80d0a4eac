"""Several processes on one database: a purge accepted by any of them is visible on every other
within one second, although each caches `purgeRequests` answers for 300 s here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

import pg
from conftest import ADMIN, LiveServer
from hawk_signing import HawkAuth

ServerFactory = Callable[..., LiveServer]
POOL = "replica%2Fpool"


def names(api: str, client: httpx.Client | None = None) -> list[str]:
    """Cache names of the pool, over a new connection unless a client is given."""
    auth = HawkAuth(*ADMIN)
    response = (client or httpx).get(f"{api}/purge-cache/{POOL}", auth=auth)
    assert response.status_code == 200, response.text
    return [entry["cacheName"] for entry in response.json()["requests"]]


def visibility_delay(writer: str, readers: list[str], cache_name: str) -> float:
    """Seconds from a 204 on `writer` until every reader (new connections) lists the purge."""
    response = httpx.post(
        f"{writer}/purge-cache/{POOL}", json={"cacheName": cache_name}, auth=HawkAuth(*ADMIN)
    )
    assert response.status_code == 204
    accepted = time.monotonic()
    pending = set(readers)
    while pending:
        elapsed = time.monotonic() - accepted
        assert elapsed < 1.0, f"not visible within 1 s on {sorted(pending)}"
        pending = {api for api in pending if cache_name not in names(api)}
        if pending:
            time.sleep(0.01)
    return time.monotonic() - accepted


def test_two_replicas_on_one_postgres_see_each_others_purges(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """Replicas A and B on one PostgreSQL: purges on either appear on the other within 1 s."""
    url = pg.create_database()
    a = server_factory("--db", url, "--cache-time", "300s", data_dir=tmp_path / "a")
    b = server_factory("--db", url, "--cache-time", "300s", data_dir=tmp_path / "b")
    time.sleep(0.5)  # let both LISTEN connections come up
    assert names(a.api) == names(b.api) == []  # both now hold the empty list in cache
    delays = [
        visibility_delay(a.api, [b.api], "from-a"),
        visibility_delay(b.api, [a.api], "from-b"),
        visibility_delay(a.api, [b.api], "from-a"),  # a re-purge moves `before`
    ]
    assert names(a.api) == names(b.api) == ["from-a", "from-b"]
    print(f"cross-replica visibility delays (PostgreSQL): {[round(d, 3) for d in delays]} s")


def test_workers_sharing_one_sqlite_file_see_each_others_purges(
    server_factory: ServerFactory,
) -> None:
    """`serve --workers 2` on SQLite: every worker lists a purge within 1 s of its 204."""
    live = server_factory("--workers", "2", "--cache-time", "300s")
    for _ in range(20):  # new connections spread over both workers; both cache the pool
        assert names(live.api) == []
    delays = [visibility_delay(live.api, [live.api] * 1, f"c{i}") for i in range(5)]
    for _ in range(20):
        assert names(live.api) == [f"c{i}" for i in range(5)]
    print(f"cross-worker visibility delays (SQLite): {[round(d, 3) for d in delays]} s")


def test_replica_survives_listener_loss_without_serving_stale_data(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """After its LISTEN connection is killed, a replica still shows other replicas' purges."""
    import psycopg

    url = pg.create_database()
    a = server_factory("--db", url, "--cache-time", "300s", data_dir=tmp_path / "a")
    b = server_factory("--db", url, "--cache-time", "300s", data_dir=tmp_path / "b")
    time.sleep(0.5)
    assert names(b.api) == []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query ILIKE 'LISTEN%%' "
            "AND pid <> pg_backend_pid()"
        )
    visibility_delay(a.api, [b.api], "after-loss")

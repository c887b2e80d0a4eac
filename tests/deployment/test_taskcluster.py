"""Taking over from upstream Taskcluster's purge-cache service and rolling back: open purge
requests move from upstream's `cache_purges` table to purgecache with `db copy`, and back into
upstream's table (either of its shapes) with the purges made meanwhile."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from uuid import UUID

import httpx
import psycopg
import pytest

import pg
from conftest import ADMIN, LiveServer
from hawk_signing import HawkAuth

ServerFactory = Callable[..., LiveServer]
AUTH = HawkAuth(*ADMIN)
SHAPES = {
    # DB version 50 and later
    "worker_pool_id": "worker_pool_id text NOT NULL, cache_name text NOT NULL, "
    "before timestamptz NOT NULL, expires timestamptz NOT NULL, "
    "etag uuid NOT NULL DEFAULT gen_random_uuid(), PRIMARY KEY (worker_pool_id, cache_name)",
    # before it
    "provisioner_id": "provisioner_id text NOT NULL, worker_type text NOT NULL, "
    "cache_name text NOT NULL, before timestamptz NOT NULL, expires timestamptz NOT NULL, "
    "etag uuid NOT NULL DEFAULT gen_random_uuid(), "
    "PRIMARY KEY (provisioner_id, worker_type, cache_name)",
}
POOL_SQL = {
    "worker_pool_id": "worker_pool_id",
    "provisioner_id": "provisioner_id || '/' || worker_type",
}


def db_copy(source: str, target: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "purgecache", "db", "copy", "--from", source, "--to", target],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def upstream_rows(url: str, shape: str) -> dict[tuple[str, str], tuple[datetime, UUID]]:
    """(pool, cache name) -> (before, etag) of upstream's open purge requests."""
    query = f"SELECT {POOL_SQL[shape]}, cache_name, before, etag FROM cache_purges"
    with psycopg.connect(url) as conn:
        return {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(query).fetchall()}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_move_in_from_upstream_and_roll_back(
    shape: str, server_factory: ServerFactory, tmp_path: Path
) -> None:
    """`db copy` from upstream's table gives workers the open requests; after purges made on
    purgecache, `db copy` back into upstream's table brings them there too (a re-purge moves
    upstream's `before` and etag), so rolling back loses none."""
    upstream = pg.create_database()
    with psycopg.connect(upstream, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE cache_purges ({SHAPES[shape]})")
        pool = {
            "worker_pool_id": ("worker_pool_id",),
            "provisioner_id": ("provisioner_id", "worker_type"),
        }[shape]
        values = ("proj-a/linux",) if shape == "worker_pool_id" else ("proj-a", "linux")
        conn.execute(
            f"INSERT INTO cache_purges ({', '.join(pool)}, cache_name, before, expires) "
            f"VALUES ({', '.join(['%s'] * len(values))}, 'from-upstream', "
            "now() - interval '1 hour', now() + interval '1 day')",
            values,
        )
    ours = pg.create_database()
    assert "copied 1 purge request(s) from an upstream" in db_copy(upstream, ours)

    live = server_factory("--db", ours)
    api = f"{live.api}/purge-cache/proj-a%2Flinux"
    seen = httpx.get(api, auth=AUTH).json()["requests"]
    assert [r["cacheName"] for r in seen] == ["from-upstream"]
    for cache_name in ("from-upstream", "made-meanwhile"):
        assert httpx.post(api, json={"cacheName": cache_name}, auth=AUTH).status_code == 204
    live.stop()

    before = upstream_rows(upstream, shape)
    out = db_copy(ours, upstream)
    assert "copied 2 purge request(s) from a purgecache database into an upstream" in out
    after = upstream_rows(upstream, shape)
    assert sorted(after) == [("proj-a/linux", "from-upstream"), ("proj-a/linux", "made-meanwhile")]
    old = before[("proj-a/linux", "from-upstream")]
    new = after[("proj-a/linux", "from-upstream")]
    assert new[0] > old[0] and new[1] != old[1]  # later `before`, new etag

"""`purgecache db copy`: from upstream Taskcluster's table and between our backends."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from purgecache.model import Provenance, PurgeRequest
from purgecache.storage import SqliteStorage

import pg
from support.sqlite_files import sqlite_file


def run_copy(source: str, target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "purgecache", "db", "copy", "--from", source, "--to", target],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )


def sqlite_rows(path: Path) -> list[tuple[str, str]]:
    with sqlite_file(path) as conn:
        return list(
            conn.execute("SELECT worker_pool_id, cache_name FROM cache_purges ORDER BY 1, 2")
        )


@pytest.mark.parametrize("shape", ["worker_pool_id", "provisioner_id"])
def test_copy_from_an_upstream_database(tmp_path: Path, shape: str) -> None:
    """Unexpired rows of upstream's cache_purges (both shapes) arrive; expired ones do not."""
    url = pg.create_database()
    pool = (
        "worker_pool_id text"
        if shape == "worker_pool_id"
        else ("provisioner_id text, worker_type text")
    )
    values = "'proj-a/linux'" if shape == "worker_pool_id" else "'proj-a', 'linux'"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE cache_purges ({pool}, cache_name text, before timestamptz, "
            "expires timestamptz)"
        )
        conn.execute(
            f"INSERT INTO cache_purges VALUES ({values}, 'open', now(), now() + interval '1 day'),"
            f" ({values}, 'old', now() - interval '3 days', now() - interval '2 days')"
        )
    target = tmp_path / "target.db"
    result = run_copy(url, f"sqlite:///{target}")
    assert result.returncode == 0, result.stderr
    assert "copied 1 purge request(s) from an upstream Taskcluster database" in result.stdout
    assert sqlite_rows(target) == [("proj-a/linux", "open")]


def test_copy_between_our_backends_keeps_the_later_before(tmp_path: Path) -> None:
    """SQLite -> PostgreSQL -> SQLite round trip; an existing later `before` is kept."""
    first = tmp_path / "first.db"
    with sqlite_file(first) as conn:
        conn.execute("PRAGMA user_version=1")
        conn.execute(
            "CREATE TABLE cache_purges (worker_pool_id TEXT, cache_name TEXT, before INTEGER, "
            "expires INTEGER, PRIMARY KEY (worker_pool_id, cache_name))"
        )
        far = 2**50
        conn.executemany(
            "INSERT INTO cache_purges VALUES (?, ?, ?, ?)",
            [(f"p/w{i}", f"c{i}", 1000 + i, far) for i in range(12_000)],
        )
    url = pg.create_database()
    result = run_copy(f"sqlite:///{first}", url)
    assert result.returncode == 0, result.stderr
    assert "copied 12000" in result.stdout
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE cache_purges SET before = 5000000 WHERE cache_name = 'c0'")
    second = tmp_path / "second.db"
    assert run_copy(url, f"sqlite:///{second}").returncode == 0
    assert run_copy(f"sqlite:///{first}", f"sqlite:///{second}").returncode == 0
    with sqlite_file(second) as conn:
        assert conn.execute("SELECT count(*) FROM cache_purges").fetchone()[0] == 12_000
        before = conn.execute("SELECT before FROM cache_purges WHERE cache_name='c0'").fetchone()
    assert before[0] == 5_000_000


def test_copied_requests_are_stored_with_the_entries_python_makes(tmp_path: Path) -> None:
    """Rows copied from upstream into PostgreSQL keep, as their entry, exactly the bytes the
    service makes for a purge (compact JSON), not something built by the database."""
    source = pg.create_database()
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE cache_purges (worker_pool_id text, cache_name text, "
            "before timestamptz, expires timestamptz)"
        )
        conn.execute(
            "INSERT INTO cache_purges VALUES ('proj-a/linux', 'ünï \"q\"', "
            "to_timestamp(1795827453.123), to_timestamp(4102444800))"
        )
    target = pg.create_database()
    assert run_copy(source, target).returncode == 0
    with psycopg.connect(target) as conn:
        (row,) = conn.execute("SELECT * FROM cache_purges").fetchall()
    request = PurgeRequest(row[0], row[1], row[2], row[3])
    assert (request.cache_name, request.before) == ('ünï "q"', 1_795_827_453_123)
    assert row[4].encode() == request.to_entry()


def test_copy_from_an_empty_database_is_an_error(tmp_path: Path) -> None:
    """A source with no purge requests table gives a one-line error, exit code 1."""
    result = run_copy(pg.create_database(), f"sqlite:///{tmp_path / 't.db'}")
    assert result.returncode == 1
    assert "holds no purgecache or upstream purge requests" in result.stderr
    assert "Traceback" not in result.stderr


def test_copy_keeps_the_until_applied_policy(tmp_path: Path) -> None:
    """A request kept until applied (and one with the normal policy) crosses SQLite ->
    PostgreSQL -> SQLite with its policy: after the move, the service still keeps it past its
    retention until every active worker applied it."""
    first = tmp_path / "first.db"
    far = 2**50

    async def purges() -> None:
        storage = SqliteStorage(first)
        await storage.upgrade()
        for request in (
            PurgeRequest("p/w", "kept", 1000, far, until_applied=far - 10),
            PurgeRequest("p/w", "normal", 1000, far),
        ):
            await storage.purge(request, request.to_entry(), Provenance("purgeCache"))
        await storage.close()

    asyncio.run(purges())
    url = pg.create_database()
    assert run_copy(f"sqlite:///{first}", url).returncode == 0
    with psycopg.connect(url) as conn:
        policies = conn.execute("SELECT cache_name, until_applied FROM cache_purges ORDER BY 1")
        assert policies.fetchall() == [("kept", far - 10), ("normal", None)]
    second = tmp_path / "second.db"
    assert run_copy(url, f"sqlite:///{second}").returncode == 0
    with sqlite_file(second) as db:
        rows = db.execute("SELECT cache_name, until_applied FROM cache_purges ORDER BY 1")
        assert rows.fetchall() == [("kept", far - 10), ("normal", None)]

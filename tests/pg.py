"""Fresh PostgreSQL databases for tests, on the server named by $PURGECACHE_TEST_POSTGRES
(default: the machine's PostgreSQL at 127.0.0.1:5432, user postgres, trust auth).

Locally, tests needing PostgreSQL skip when it is unreachable; in CI ($CI set) they fail.
"""

from __future__ import annotations

import os
import uuid

import pytest

ADMIN_URL = os.environ.get(
    "PURGECACHE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
_created: list[str] = []


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def require_postgres() -> None:
    """Skip (locally) or fail (in CI) unless PostgreSQL answers."""
    import psycopg

    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        message = f"PostgreSQL at {ADMIN_URL} is unreachable: {error}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run every PostgreSQL test)")
        pytest.skip(message + " (set PURGECACHE_TEST_POSTGRES to run these tests)")


def create_database() -> str:
    """A new, empty database; dropped by `drop_databases` at the end of the session."""
    import psycopg

    require_postgres()
    name = f"purgecache_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    _created.append(name)
    return _with_database(ADMIN_URL, name)


def vanish_database(url: str) -> None:
    """Make a database vanish under a server now: its connections end and new ones fail with
    "database does not exist", as after DROP DATABASE. It is renamed, not dropped: a DROP
    forces an immediate checkpoint of everything the session wrote so far (over a minute in
    the middle of a full run here); the renamed one goes with the others at the end."""
    import time

    import psycopg

    name = url.rpartition("/")[2]
    gone = f"{name}_gone"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        deadline = time.monotonic() + 30
        while True:  # the ended sessions take a moment to leave
            try:
                conn.execute(f'ALTER DATABASE "{name}" RENAME TO "{gone}"')
                break
            except psycopg.errors.ObjectInUse:
                assert time.monotonic() < deadline, f"{name} is still in use"
                time.sleep(0.02)
    _created[_created.index(name)] = gone


def drop_databases() -> None:
    """Drop every database this session created."""
    import psycopg

    if not _created:
        return
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        for name in _created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _created.clear()

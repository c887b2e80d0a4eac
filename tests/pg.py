"""Fresh PostgreSQL databases for tests, on the server named by $PURGECACHE_TEST_POSTGRES
(default: the machine's PostgreSQL at 127.0.0.1:5432, user postgres, trust auth).

Locally, tests needing PostgreSQL skip when it is unreachable; in CI ($CI set) they fail.

Every database of one pytest run is named after the run (`RUN_VARIABLE`, set by the run's
first process before pytest-xdist starts its workers, which inherit it), and that process
drops them all when every worker is done (`drop_databases`). A DROP forces an immediate
checkpoint of everything written so far; done by a worker that finished first, it stalled
the other worker's PostgreSQL tests. Other runs on the same server keep their databases.
"""

from __future__ import annotations

import os
import uuid

import pytest

ADMIN_URL = os.environ.get(
    "PURGECACHE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
RUN_VARIABLE = "PURGECACHE_TEST_RUN"
PREFIX = "purgecache_test_"


def start_run() -> None:
    """Name this run's databases (in the run's first process, before any worker starts)."""
    os.environ[RUN_VARIABLE] = uuid.uuid4().hex[:8]


def _run_prefix() -> str:
    return f"{PREFIX}{os.environ.get(RUN_VARIABLE, 'norun')}_"


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
    """A new, empty database; dropped by `drop_databases` at the end of the run."""
    import psycopg

    require_postgres()
    name = f"{_run_prefix()}{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return _with_database(ADMIN_URL, name)


def vanish_database(url: str) -> None:
    """Make a database vanish under a server now: its connections end and new ones fail with
    "database does not exist", as after DROP DATABASE. It is renamed, not dropped: a DROP
    forces an immediate checkpoint of everything the session wrote so far (over a minute in
    the middle of a full run here); the renamed one keeps the run's prefix and goes with the
    others at the end."""
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


def drop_databases() -> None:
    """Drop every database this run created (nothing if PostgreSQL is not there)."""
    import psycopg

    prefix = _run_prefix()
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3, autocommit=True) as conn:
            names = conn.execute(
                "SELECT datname FROM pg_database WHERE left(datname, %s) = %s",
                (len(prefix), prefix),
            ).fetchall()
            for (name,) in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.OperationalError:
        return

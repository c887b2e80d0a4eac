"""First-step mistakes get errors that say what is wrong and what to do (issue 14, item 6):
one test per misleading error that was reported."""

from __future__ import annotations

import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from purgecache.client import ConfigurationError, PurgeCache
from purgecache.storage.migrations import migrations

import pg
from conftest import ADMIN, LiveServer, free_port
from hawk_signing import HawkAuth
from support.commands import run_cli, startup_failure
from support.sqlite_files import sqlite_file

ServerFactory = Callable[..., LiveServer]
ADMIN_ENV = {"TASKCLUSTER_CLIENT_ID": ADMIN[0], "TASKCLUSTER_ACCESS_TOKEN": ADMIN[1]}


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    """`purgecache serve` that is expected to refuse to start."""
    return run_cli("serve", "--port", str(free_port()), *args)


def schema_version(db: Path) -> int:
    with sqlite_file(db) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def test_a_missing_postgresql_database_is_named(tmp_path: Path) -> None:
    """A URL naming a database that does not exist says so, in one line, at once."""
    pg.require_postgres()
    missing = pg.ADMIN_URL.rpartition("/")[0] + "/purgecache_no_such_database"
    started = time.monotonic()
    result = serve("--data-dir", str(tmp_path), "--db", missing)
    assert 'database "purgecache_no_such_database" does not exist' in startup_failure(result)
    assert len(result.stderr.splitlines()) == 1  # no pool warnings before it
    assert time.monotonic() - started < 10


def test_no_migrate_names_the_command_that_upgrades_this_database(tmp_path: Path) -> None:
    """--no-migrate on an empty database names `db upgrade --db URL`, and that very command
    upgrades that database (not the default SQLite file)."""
    db = tmp_path / "elsewhere.db"
    data_dir = tmp_path / "data"
    error = startup_failure(
        serve("--no-migrate", "--data-dir", str(data_dir), "--db", f"sqlite:///{db}")
    )
    command = re.search(r"run `(purgecache db upgrade [^`]+)`", error)
    assert command is not None, error
    upgraded = run_cli(*shlex.split(command[1])[1:], "--data-dir", str(data_dir))
    assert upgraded.returncode == 0, upgraded.stderr
    assert schema_version(db) > 0 and not (data_dir / "purgecache.db").exists()


def test_db_upgrade_names_the_database_and_whether_it_changed(tmp_path: Path) -> None:
    """`db upgrade` says which database (password masked) and whether it changed anything."""
    pg.require_postgres()
    url = pg.create_database().replace("postgresql://postgres@", "postgresql://postgres:pw1@")
    masked = url.replace(":pw1@", ":***@")
    first, second = run_cli("db", "upgrade", "--db", url), run_cli("db", "upgrade", "--db", url)
    latest = migrations("postgres")[-1].number
    assert first.stdout == f"database {masked}: schema created at version {latest}\n", first.stderr
    assert second.stdout == (
        f"database {masked}: schema already at version {latest}; nothing changed\n"
    )
    db = f"sqlite:///{tmp_path / 'a.db'}"
    assert run_cli("db", "upgrade", "--db", db).stdout.startswith(f"database {db}: schema created")


def test_a_huge_cache_name_error_is_one_short_line(server_factory: ServerFactory) -> None:
    """A 5,000-character cache name gives one line of at most a few hundred characters."""
    live = server_factory()
    env = {"TASKCLUSTER_ROOT_URL": live.root_url, **ADMIN_ENV}
    result = run_cli("purge", "proj-a/linux", "x" * 5000, env=env)
    assert result.returncode == 1, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: purgeCache: 400 InputValidationError") and len(line) < 500
    assert "more characters)" in line


def test_ctrl_c_in_a_client_command_exits_130(tmp_path: Path) -> None:
    """Ctrl-C while a client command waits for the service: one line, exit status 130."""
    with socket.socket() as silent:  # accepts connections and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        root_url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        process = subprocess.Popen(
            [sys.executable, "-m", "purgecache", "ping"],
            stderr=subprocess.PIPE,
            text=True,
            env={"TASKCLUSTER_ROOT_URL": root_url, "PATH": "/usr/bin:/bin"},
        )
        silent.accept()[0].close()  # the command is waiting for its answer now
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert stderr == "Error: interrupted\n"


@pytest.mark.parametrize("suffix", ["/api/purge-cache/v1", "/api/purge-cache/v1/"])
def test_a_root_url_with_the_api_path_says_to_drop_it(suffix: str) -> None:
    """A root URL ending in /api/purge-cache/v1 is refused with the root URL to use instead."""
    result = run_cli("ping", env={"TASKCLUSTER_ROOT_URL": f"http://127.0.0.1:9{suffix}"})
    assert result.returncode == 3
    assert "without /api/purge-cache/v1, e.g. http://127.0.0.1:9\n" in result.stderr
    with pytest.raises(ConfigurationError, match=r"e\.g\. https://tc\.example\.com$"):
        PurgeCache(f"https://tc.example.com{suffix}")


def test_cache_time_zero_turns_the_pool_cache_off(server_factory: ServerFactory) -> None:
    """`--cache-time 0s` is accepted and every purgeRequests read goes to the database."""
    live = server_factory("--cache-time", "0s")
    with httpx.Client(auth=HawkAuth(*ADMIN), timeout=10) as client:
        for _ in range(3):
            assert client.get(f"{live.api}/purge-cache/proj-a%2Flinux").status_code == 200
        metrics = client.get(f"{live.root_url}/metrics").text
    hits = re.search(r'purgecache_pool_cache_total\{result="hit"\} (\S+)', metrics)
    assert 'purgecache_pool_cache_total{result="miss"} 3.0' in metrics
    assert hits is None or float(hits[1]) == 0


def test_a_taken_port_writes_nothing(tmp_path: Path) -> None:
    """`serve` on a port in use refuses before creating a clients file or a database."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("serve", "--port", str(port), "--data-dir", str(tmp_path / "data"))
    assert startup_failure(result).startswith(f"cannot listen on 127.0.0.1:{port}")
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("variable", "value"),
    [("PURGECACHE_PORT", "http"), ("PURGECACHE_CACHE_TIME", "soon"), ("PURGECACHE_WORKERS", "0")],
)
def test_a_bad_environment_variable_is_named_not_the_flag(variable: str, value: str) -> None:
    """A bad value from a PURGECACHE_* variable is reported under the variable's name."""
    result = run_cli("serve", env={variable: value})
    assert result.returncode == 2
    assert f"Invalid value for environment variable {variable}: " in result.stderr
    assert "'--" not in result.stderr

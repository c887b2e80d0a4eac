"""A PostgreSQL password given in `--db` leaves the process nowhere: not in logs, errors,
`--help`, `__heartbeat__` or `/metrics`, whether the database exists or not.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import pg
from conftest import LiveServer, free_port

PASSWORD = "s3cret-pw"


def with_password(url: str) -> str:
    """The test PostgreSQL URL with a password (trust authentication ignores it)."""
    scheme, _, rest = url.partition("://")
    userinfo, _, host = rest.rpartition("@")
    return f"{scheme}://{userinfo.partition(':')[0] or 'postgres'}:{PASSWORD}@{host}"


def missing_database() -> str:
    pg.require_postgres()
    return with_password(pg.ADMIN_URL.rpartition("/")[0] + "/purgecache_test_never_created")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "purgecache", *args], capture_output=True, text=True,
        timeout=60, env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_serve_on_a_missing_database_names_it_masked(tmp_path: Path) -> None:
    """Start-up on a database that does not exist: the error shows `***`, never the password."""
    url = missing_database()
    result = run_cli("serve", "--port", str(free_port()), "--data-dir", str(tmp_path), "--db", url)
    assert result.returncode == 1
    assert PASSWORD not in result.stderr + result.stdout
    masked = url.replace(PASSWORD, "***")
    assert f"cannot use database {masked}: " in result.stderr


@pytest.mark.parametrize("command", [["expire"], ["db", "upgrade"]])
def test_database_commands_mask_the_password(command: list[str], tmp_path: Path) -> None:
    """`expire` and `db upgrade` fail with one `Error:` line showing the URL masked."""
    url = missing_database()
    result = run_cli(*command, "--data-dir", str(tmp_path), env={"PURGECACHE_DB": url})
    assert result.returncode == 1
    assert PASSWORD not in result.stderr + result.stdout
    assert f"Error: cannot use database {url.replace(PASSWORD, '***')}: " in result.stderr


def test_db_copy_masks_the_password(tmp_path: Path) -> None:
    """`db copy` from a database holding nothing to copy names it without the password."""
    source = with_password(pg.create_database())
    result = run_cli("db", "copy", "--from", source, "--to", f"sqlite:///{tmp_path}/t.db")
    assert result.returncode == 1
    assert PASSWORD not in result.stderr + result.stdout
    assert source.replace(PASSWORD, "***") in result.stderr


def test_help_never_shows_the_password() -> None:
    """`serve --help` with PURGECACHE_DB set shows no password."""
    result = run_cli("serve", "--help", env={"PURGECACHE_DB": missing_database()})
    assert result.returncode == 0 and "PURGECACHE_DB" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr


def test_a_running_server_never_shows_the_password(
    server_factory: Callable[..., LiveServer],
) -> None:
    """Logs, heartbeat and metrics, before and after the database vanishes, hide the password."""
    url = with_password(pg.create_database())
    live = server_factory("--db", url)
    bodies = [httpx.get(f"{live.root_url}{path}", timeout=30).text
              for path in ("/__heartbeat__", "/metrics")]  # fmt: skip
    pg.vanish_database(url)
    failed = httpx.get(f"{live.root_url}/__heartbeat__", timeout=30)
    assert failed.status_code == 503
    bodies += [failed.text, httpx.get(f"{live.root_url}/metrics", timeout=30).text]
    assert live.stop() == 0
    log = live.log_text()
    assert "postgresql://postgres:***@" in log and '"logger":"psycopg.pool"' in log
    assert all(PASSWORD not in text for text in [*bodies, log])

"""`pip install purgecache` without `[server]`: the server commands say what to install in one
line; the client and agent commands work.

The server's dependencies are installed in the test environment, so a `sitecustomize` on
PYTHONPATH makes them unimportable in the child process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import ADMIN, LiveServer

SERVER_ONLY = ["granian", "uvloop", "orjson", "psycopg", "psycopg_pool", "jsonschema",
               "prometheus_client"]  # fmt: skip

BLOCKER = f"""
import sys

class BlockServerExtra:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {SERVER_ONLY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, BlockServerExtra())
"""


@pytest.fixture
def without_server(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `python -m purgecache ...` (or `python -c`) with the server extra unimportable."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        command = list(args) if args[0] == "-c" else ["-m", "purgecache", *args]
        return subprocess.run(
            [sys.executable, *command], capture_output=True, text=True, timeout=60, cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(site), **(env or {})},
        )  # fmt: skip

    return run


def test_the_blocker_blocks(
    without_server: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    """Guard: in the child process each server dependency really fails to import."""
    code = f"import importlib\nfor name in {SERVER_ONLY!r}:\n"
    code += "    try:\n        importlib.import_module(name)\n    except ImportError:\n"
    code += "        pass\n    else:\n        raise SystemExit(name)\n"
    assert without_server("-c", code).returncode == 0


@pytest.mark.parametrize(
    "command",
    [["serve"], ["expire"], ["db", "upgrade"], ["db", "copy", "--from", "sqlite:///a.db", "--to",
                                                  "sqlite:///b.db"]],
    ids=["serve", "expire", "db-upgrade", "db-copy"],
)  # fmt: skip
def test_server_commands_say_what_to_install(
    without_server: Callable[..., subprocess.CompletedProcess[str]], command: list[str]
) -> None:
    """Without the extra, a server command exits 1 with one line naming the [server] extra (not
    an unqualified `pip install purgecache`: that name is not ours on PyPI)."""
    result = without_server(*command)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: ") and "[server] extra" in line
    assert "pip install 'purgecache[server]'" not in line


def test_client_and_agent_commands_work_without_the_extra(
    without_server: Callable[..., subprocess.CompletedProcess[str]],
    server_factory: Callable[..., LiveServer],
    tmp_path: Path,
) -> None:
    """purge, requests and agent sync run against a real server with only the base install."""
    live = server_factory()
    env = {"TASKCLUSTER_ROOT_URL": live.root_url, "TASKCLUSTER_CLIENT_ID": ADMIN[0],
           "TASKCLUSTER_ACCESS_TOKEN": ADMIN[1]}  # fmt: skip
    purged = without_server("purge", "base/pool", "checkouts", env=env)
    assert purged.returncode == 0, purged.stderr
    listed = without_server("requests", "base/pool", "--json", env=env)
    assert listed.returncode == 0 and '"cacheName": "checkouts"' in listed.stdout, listed.stderr
    synced = without_server(
        "agent", "sync", "--pool", "base/pool", "--cache-root", str(tmp_path / "caches"), env=env
    )
    assert synced.returncode == 0, synced.stderr
    assert without_server("--help").returncode == 0


def test_clients_commands_work_without_the_extra(
    without_server: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    """`clients add` and `list` need only the base install (a host may manage its file so)."""
    path = str(tmp_path / "clients.toml")
    added = without_server("clients", "add", "base", "--clients", path)
    assert added.returncode == 0, added.stderr
    listed = without_server("clients", "list", "--clients", path)
    assert listed.stdout.startswith("base\tenabled"), listed.stderr

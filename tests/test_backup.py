"""`purgecache db backup` of a live SQLite database, and the restore docs/upgrade.md describes."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx

from purgecache.storage.migrations import migrations

from conftest import ADMIN, LiveServer, start_server
from hawk_signing import HawkAuth
from support.commands import run_cli


def purge(live: LiveServer, cache: str) -> None:
    with httpx.Client(auth=HawkAuth(*ADMIN), timeout=10) as client:
        response = client.post(f"{live.api}/purge-cache/bk/pool", json={"cacheName": cache})
    assert response.status_code == 204


def listed(live: LiveServer) -> list[str]:
    with httpx.Client(auth=HawkAuth(*ADMIN), timeout=10) as client:
        answer = client.get(f"{live.api}/purge-cache/bk/pool").json()
    return [entry["cacheName"] for entry in answer["requests"]]


def test_a_backup_of_a_running_server_restores(
    server_factory: Callable[..., LiveServer], tmp_path: Path
) -> None:
    """Backed up while serving, restored as documented: the purges made before the backup are
    back, the later ones gone, and the copy is a single file."""
    data = tmp_path / "data"
    live = server_factory(data_dir=data)
    purge(live, "before-backup")
    backup = tmp_path / "backups" / "pc.db"
    backup.parent.mkdir()
    result = run_cli("db", "backup", "--data-dir", str(data), str(backup))
    assert result.returncode == 0, result.stderr
    latest = migrations("sqlite")[-1].number
    assert result.stdout.endswith(f"(schema version {latest}) to {backup}\n")
    assert sorted(p.name for p in backup.parent.iterdir()) == ["pc.db"]
    purge(live, "after-backup")
    assert live.stop() == 0
    shutil.copyfile(backup, data / "purgecache.db")  # the restore of docs/upgrade.md
    for sidecar in ("purgecache.db-wal", "purgecache.db-shm"):
        (data / sidecar).unlink(missing_ok=True)
    restored = start_server(data)
    try:
        assert listed(restored) == ["before-backup"]
    finally:
        restored.stop()


def test_backup_refuses_to_overwrite_and_names_pg_dump_for_postgresql(tmp_path: Path) -> None:
    """An existing target is kept; a PostgreSQL database is pointed to pg_dump (password
    masked); a file that is not a purgecache database is refused."""
    existing = tmp_path / "kept.db"
    existing.write_text("mine")
    assert run_cli("db", "upgrade", "--data-dir", str(tmp_path)).returncode == 0
    kept = run_cli("db", "backup", "--data-dir", str(tmp_path), str(existing))
    assert kept.returncode == 1 and "exists already" in kept.stderr
    assert existing.read_text() == "mine"
    pg = run_cli("db", "backup", "--db", "postgresql://svc:pw1@db/pc", str(tmp_path / "x"))
    assert pg.returncode == 1 and "pg_dump --format=custom" in pg.stderr
    assert "pw1" not in pg.stderr and "svc:***@db" in pg.stderr
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    refused = run_cli("db", "backup", "--db", f"sqlite:///{other}", str(tmp_path / "y.db"))
    assert refused.returncode == 1 and "not a purgecache database" in refused.stderr
    assert not (tmp_path / "y.db").exists()

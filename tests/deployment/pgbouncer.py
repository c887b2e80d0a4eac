"""PgBouncer run by a test with deploy/pgbouncer/pgbouncer.ini, moved onto a free port in front
of a given PostgreSQL, trusting its users (PgBouncer refuses to run as root: it runs as the
`postgres` user, as the private clusters do)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from conftest import free_port
from deployment.tools import DEPLOY, require_root, require_tool

INI = DEPLOY / "pgbouncer" / "pgbouncer.ini"


def pgbouncer_ini(folder: Path, port: int, pg_host: str, pg_port: int) -> str:
    """The shipped file: every database forwarded to `pg_host:pg_port`, listening on `port`,
    users trusted (listed in a userlist in `folder`), logs and pid in `folder`, and the admin
    console open to `postgres`."""
    text = INI.read_text()
    text = re.sub(r"^purgecache = .*$", f"* = host={pg_host} port={pg_port}", text, flags=re.M)
    for key, value in {
        "listen_port": str(port),
        "auth_type": "trust",
        "auth_file": str(folder / "userlist.txt"),
        "logfile": str(folder / "pgbouncer.log"),
        "pidfile": str(folder / "pgbouncer.pid"),
    }.items():
        text, count = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.M)
        assert count == 1, key
    assert re.search(r"^pool_mode = transaction$", text, re.M)
    return text + "admin_users = postgres\n"  # for SHOW on the admin console


class PgBouncer:
    """A PgBouncer process in front of PostgreSQL at `pg_host:pg_port`."""

    def __init__(self, pg_host: str, pg_port: int) -> None:
        require_root()
        self.binary = require_tool("pgbouncer", under=("/usr/sbin",))
        self.folder = Path(tempfile.mkdtemp(prefix="purgecache-pgbouncer-"))
        shutil.chown(self.folder, "postgres", "postgres")
        self.port = free_port()
        (self.folder / "userlist.txt").write_text('"postgres" ""\n')
        ini = self.folder / "pgbouncer.ini"
        ini.write_text(pgbouncer_ini(self.folder, self.port, pg_host, pg_port))
        self.process = subprocess.Popen(
            ["runuser", "-u", "postgres", "--", self.binary, str(ini)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._wait()

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _wait(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                psycopg.connect(self.url("pgbouncer"), autocommit=True, connect_timeout=1).close()
                return
            except psycopg.Error:
                time.sleep(0.1)
        raise AssertionError(f"PgBouncer did not start: {self.log()}")

    def show(self, what: str) -> list[tuple[object, ...]]:
        """`SHOW what` on PgBouncer's admin console."""
        with psycopg.connect(self.url("pgbouncer"), autocommit=True) as conn:
            conn.prepare_threshold = None
            return conn.execute(f"SHOW {what}", prepare=False).fetchall()

    def log(self) -> str:
        path = self.folder / "pgbouncer.log"
        return path.read_text()[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)

"""Where the service's data lives for each backend: two databases, small (1k rows) and big (1M).

SQLite: two files in the work directory. PostgreSQL: two fresh databases created on the server
that `--db` names (needs CREATEDB), dropped again at the end; the schema is made by purgecache's
own storage API (`upgrade`), the rows go in with COPY.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from harness import seed


class BackendUnavailable(RuntimeError):
    """This backend cannot be benchmarked here; the message says why."""


class SqliteDatabases:
    """small.db and big.db in the work directory."""

    name = "sqlite"

    def __init__(self, workdir: Path) -> None:
        self.small_path = workdir / "small.db"
        self.big_path = workdir / "big.db"
        self.small_url = f"sqlite:///{self.small_path}"
        self.big_url = f"sqlite:///{self.big_path}"

    def seed_small(self, rows: list[seed.Row]) -> int:
        return seed.seed_sqlite(self.small_path, rows)

    def seed_big(self, rows: Iterable[seed.Row]) -> int:
        return seed.seed_sqlite(self.big_path, rows)

    def new_small(self, tag: str) -> tuple[str, str]:
        """Another small database (for another revision): how `seed_cli` names it, its URL."""
        path = self.small_path.with_name(f"small-{tag}.db")
        return str(path), f"sqlite:///{path}"

    def drop(self) -> None:
        """The work directory goes as a whole."""


class PostgresDatabases:
    """Two databases created for this run on the server `server_url` points at."""

    name = "postgres"

    def __init__(self, server_url: str, repo: Path) -> None:
        from harness.install import ensure_postgres_driver

        try:
            ensure_postgres_driver(repo)
            import psycopg
        except (ImportError, OSError, subprocess.SubprocessError) as error:
            raise BackendUnavailable(f"no PostgreSQL driver (psycopg) here: {error}") from error
        self.psycopg = psycopg
        self.server_url = server_url
        suffix = f"{os.getpid()}"
        self.names = (f"pcbench_small_{suffix}", f"pcbench_big_{suffix}")
        self.small_url, self.big_url = (self._url(name) for name in self.names)
        self.created: list[str] = []
        try:
            with psycopg.connect(server_url, connect_timeout=5, autocommit=True) as conn:
                for name in self.names:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                    conn.execute(f'CREATE DATABASE "{name}"')
                    self.created.append(name)
        except psycopg.Error as error:
            raise BackendUnavailable(
                f"cannot create benchmark databases on {_masked(server_url)}: {error}".strip()
            ) from error

    def _url(self, database: str) -> str:
        parts = urlsplit(self.server_url)
        return urlunsplit(parts._replace(path=f"/{database}"))

    def seed_small(self, rows: list[seed.Row]) -> int:
        return seed_postgres(self.small_url, rows)

    def seed_big(self, rows: Iterable[seed.Row]) -> int:
        return seed_postgres(self.big_url, rows)

    def new_small(self, tag: str) -> tuple[str, str]:
        """Another (empty) small database, dropped at the end: how `seed_cli` names it, its
        URL (the same)."""
        name = f"pcbench_small_{tag}_{os.getpid()}"
        with self.psycopg.connect(self.server_url, connect_timeout=5, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        url = self._url(name)
        return url, url

    def drop(self) -> None:
        """Drop the databases this run created (after the services have stopped)."""
        try:
            with self.psycopg.connect(self.server_url, connect_timeout=5, autocommit=True) as conn:
                for name in self.created:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except self.psycopg.Error as error:
            print(f"[cleanup] could not drop {', '.join(self.created)}: {error}")
        self.created = []


def seed_postgres(url: str, rows: Iterable[seed.Row]) -> int:
    """The schema by the imported purgecache's own `upgrade`, the rows by COPY."""
    import psycopg

    from purgecache.storage import open_storage  # ValueError: purgecache refuses the URL

    async def schema() -> None:
        storage = open_storage(url)
        try:
            await storage.upgrade()
        finally:
            await storage.close()

    asyncio.run(schema())
    with psycopg.connect(url, autocommit=False) as conn:
        with conn.cursor().copy(
            "COPY cache_purges (worker_pool_id, cache_name, before, expires, wire) FROM STDIN"
        ) as copy:
            for pool, name, before, expires, entry in seed.with_wire(rows):
                text = entry.decode() if isinstance(entry, bytes) else entry  # a text column
                copy.write_row((pool, name, before, expires, text))
        conn.commit()
        conn.execute("ANALYZE cache_purges")
        count = conn.execute("SELECT count(*) FROM cache_purges").fetchone()
    return int(count[0]) if count else 0


def _masked(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url

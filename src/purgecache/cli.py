"""The `purgecache` command line: serve the API, expire old requests, manage the database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

from purgecache.model import parse_duration
from purgecache.settings import DEFAULT_CACHE_TIME_MS, DEFAULT_RETENTION_MS, Settings

if TYPE_CHECKING:
    from purgecache.storage import Storage

T = TypeVar("T")


class Duration(click.ParamType):  # type: ignore[type-arg]
    """A duration such as 30d, 12h, 90s: converted to milliseconds."""

    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


DB_HELP = "Database URL: sqlite:///relative.db or sqlite:////abs/path.db."


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="purgecache")
def main() -> None:
    """purgecache: a Taskcluster-compatible purge-cache service."""


@main.command()
@click.option(
    "--host",
    envvar="PURGECACHE_HOST",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on.",
)
@click.option(
    "--port",
    envvar="PURGECACHE_PORT",
    default=8080,
    show_default=True,
    type=int,
    help="Port to listen on.",
)
@click.option(
    "--root-url",
    envvar="PURGECACHE_ROOT_URL",
    default="",
    help="Public root URL clients use (default http://HOST:PORT).",
)
@click.option(
    "--db",
    "db_url",
    envvar="PURGECACHE_DB",
    default="",
    help=DB_HELP + " Default: purgecache.db in the data directory.",
)
@click.option(
    "--clients",
    "clients_file",
    envvar="PURGECACHE_CLIENTS",
    default="",
    help="TOML clients file (default: clients.toml in the data directory, created "
    "with an admin credential on first start).",
)
@click.option(
    "--data-dir",
    envvar="PURGECACHE_DATA_DIR",
    default="",
    help="Data directory (default $XDG_DATA_HOME/purgecache or ~/.local/share/purgecache).",
)
@click.option(
    "--retention",
    envvar="PURGECACHE_RETENTION",
    type=Duration(),
    default=DEFAULT_RETENTION_MS,
    help="How long a purge request stays open (e.g. 30d, 12h). Default 30d.",
)
@click.option(
    "--cache-time",
    envvar="PURGECACHE_CACHE_TIME",
    type=Duration(),
    default=DEFAULT_CACHE_TIME_MS,
    help="How long a pool's requests are served from "
    "memory before the database is read again. Default 10s.",
)
@click.option(
    "--sqlite-synchronous",
    envvar="PURGECACHE_SQLITE_SYNCHRONOUS",
    type=click.Choice(["NORMAL", "FULL"], case_sensitive=False),
    default="NORMAL",
    show_default=True,
    help="NORMAL survives a crash of the service; FULL also a power loss (slower writes).",
)
@click.option(
    "--workers",
    envvar="PURGECACHE_WORKERS",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes.",
)
@click.option(
    "--interface",
    envvar="PURGECACHE_INTERFACE",
    type=click.Choice(["rsgi", "asgi"]),
    default="rsgi",
    show_default=True,
    help="granian interface: rsgi is faster; asgi hands Hawk the raw request path (rsgi "
    "rebuilds it, which covers every Taskcluster client's spelling of pool ids).",
)
@click.option(
    "--migrate/--no-migrate",
    envvar="PURGECACHE_MIGRATE",
    default=True,
    show_default=True,
    help="Apply missing database migrations at start-up (with --no-migrate, refuse to start "
    "on an outdated schema; run `purgecache db upgrade`).",
)
@click.option(
    "--auth-root-url",
    envvar="PURGECACHE_AUTH_ROOT_URL",
    default="",
    help="Delegate authentication to this Taskcluster deployment's auth service "
    "(authenticateHawk) instead of the clients file.",
)
@click.option(
    "--trust-proxy/--no-trust-proxy",
    envvar="PURGECACHE_TRUST_PROXY",
    default=False,
    show_default=True,
    help="Believe X-Forwarded-For for the client address in logs.",
)
@click.option(
    "--access-log/--no-access-log",
    envvar="PURGECACHE_ACCESS_LOG",
    default=True,
    show_default=True,
    help="One JSON line per request on stderr.",
)
def serve(**options: object) -> None:
    """Serve the purge-cache API in the foreground until SIGTERM or Ctrl-C.

    \b
    Examples:
      purgecache serve
      purgecache serve --port 9000 --root-url https://tc.example.com --db sqlite:////var/lib/pc.db
    """
    from purgecache.server import StartupError, run

    options["sqlite_synchronous"] = str(options["sqlite_synchronous"]).upper()
    options["retention_ms"] = options.pop("retention")
    options["cache_time_ms"] = options.pop("cache_time")
    try:
        run(Settings(**options))  # type: ignore[arg-type]
    except StartupError as error:
        raise click.ClickException(str(error)) from error


def _database_settings(db_url: str, data_dir: str) -> Settings:
    try:
        return Settings(db_url=db_url, data_dir=data_dir).resolved()
    except ValueError as error:
        raise click.ClickException(str(error)) from error


def _run_storage(work: Callable[[Storage], Awaitable[T]], settings: Settings) -> T:
    """Upgrade the schema, then run `work` on the storage; one-line errors."""
    from purgecache.server import StartupError, upgrade_database
    from purgecache.storage import StorageError, open_storage

    async def run() -> T:
        await upgrade_database(settings)
        storage = open_storage(settings.db_url)
        try:
            return await work(storage)
        finally:
            await storage.close()

    try:
        return asyncio.run(run())
    except (StartupError, StorageError) as error:
        raise click.ClickException(str(error)) from error


DB_OPTION = click.option("--db", "db_url", envvar="PURGECACHE_DB", default="", help=DB_HELP)
DATA_DIR_OPTION = click.option(
    "--data-dir", envvar="PURGECACHE_DATA_DIR", default="", help="Data directory."
)


@main.command()
@DB_OPTION
@DATA_DIR_OPTION
def expire(db_url: str, data_dir: str) -> None:
    """Delete purge requests whose retention has passed (safe to run from cron, and from
    several machines at once: one of them does the work)."""
    from purgecache.service import wall_clock_ms

    async def work(storage: Storage) -> int | None:
        return await storage.expire(wall_clock_ms())

    removed = _run_storage(work, _database_settings(db_url, data_dir))
    if removed is None:
        click.echo("another process is expiring purge requests right now; nothing to do")
    else:
        click.echo(f"expired {removed} purge request(s)")


@main.group()
def db() -> None:
    """Manage the database: schema upgrades and copies."""


@db.command("upgrade")
@DB_OPTION
@DATA_DIR_OPTION
def db_upgrade(db_url: str, data_dir: str) -> None:
    """Create the schema or bring it up to date (never downgrades)."""

    async def work(storage: Storage) -> int:
        return await storage.upgrade()

    version = _run_storage(work, _database_settings(db_url, data_dir))
    click.echo(f"database schema is at version {version}")


@db.command("copy")
@click.option("--from", "source", required=True, help="Database to read: ours, or upstream's.")
@click.option("--to", "target", required=True, help="Database to write (schema created).")
def db_copy(source: str, target: str) -> None:
    """Copy open purge requests from one database into another.

    The source may be a purgecache SQLite or PostgreSQL database, or an upstream Taskcluster
    PostgreSQL database (its cache_purges table). Expired requests are skipped; a request
    already in the target keeps the later time.

    \b
    Example:
      purgecache db copy --from postgresql://tc@db/taskcluster --to sqlite:////var/lib/pc.db
    """
    from purgecache.service import wall_clock_ms
    from purgecache.storage import StorageError
    from purgecache.storage.copy import copy_requests

    try:
        copied, kind = asyncio.run(copy_requests(source, target, wall_clock_ms()))
    except (StorageError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"copied {copied} purge request(s) from {kind}")


def _register_client_commands() -> None:
    from purgecache.agent.cli import register as register_agent
    from purgecache.cli_client import register

    register(main)
    register_agent(main)


_register_client_commands()

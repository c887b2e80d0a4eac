"""The `purgecache` command line: serve the API, expire old requests, manage the database."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from purgecache.cli_env import EnvOption
from purgecache.model import parse_duration
from purgecache.redact import dsn_secrets, redact_dsn, scrub
from purgecache.settings import SETTINGS, Setting, Settings, settings_named

if TYPE_CHECKING:
    from purgecache.storage import Storage

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

# The top-level packages of the `[server]` extra (the base install is the client and agent).
SERVER_PACKAGES = frozenset(
    {"granian", "uvloop", "orjson", "jsonschema", "psycopg", "psycopg_pool", "prometheus_client"}
)


class Duration(click.ParamType):  # type: ignore[type-arg]
    """A duration such as 30d, 12h, 90s: converted to milliseconds (0s only where allowed)."""

    name = "duration"

    def __init__(self, *, zero_allowed: bool = False) -> None:
        self.zero_allowed = zero_allowed

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_duration(str(value), allow_zero=self.zero_allowed)
        except ValueError as error:
            self.fail(str(error), param, ctx)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="purgecache")
def main() -> None:
    """purgecache: a Taskcluster-compatible purge-cache service."""


def _click_type(row: Setting) -> click.ParamType | type | None:  # type: ignore[type-arg]
    if row.kind == "duration":
        return Duration(zero_allowed=row.zero_allowed)
    if row.kind == "choice":
        return click.Choice(row.choices, case_sensitive=False)
    if row.int_range is not None:
        return click.IntRange(*row.int_range)
    return {"integer": int, "text": str}.get(row.kind)


def _shown_default(row: Setting) -> bool | str:
    """--help shows a literal default as it is, a derived one as the table words it."""
    if row.kind == "list":
        return False
    if row.kind == "switch" or row.shown_default == str(row.default):
        return True
    return row.shown_default or False


def _option(row: Setting) -> Callable[[F], F]:
    """The click option of one row of the settings table."""
    return click.option(
        row.flag,
        row.name,
        cls=EnvOption,
        envvar=row.envvar,
        default=row.default,
        multiple=row.kind == "list",
        type=_click_type(row),
        show_default=_shown_default(row),
        show_envvar=True,
        help=row.help,
    )


def settings_options(rows: tuple[Setting, ...]) -> Callable[[F], F]:
    """The click options of these settings, in the table's order."""

    def decorate(command: F) -> F:
        for row in reversed(rows):
            command = _option(row)(command)
        return command

    return decorate


@contextmanager
def _server_installed() -> Iterator[None]:
    """Without the `[server]` extra, one line saying so instead of a traceback."""
    try:
        yield
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] not in SERVER_PACKAGES:
            raise
        wheel = f"./purgecache-{version('purgecache')}-py3-none-any.whl"
        raise click.ClickException(
            f"this command needs the server's dependencies ({error.name} is missing): install "
            "purgecache again with its [server] extra, from the wheel, checkout or git URL it "
            f"came from, e.g. pip install '{wheel}[server]'"
        ) from None


def _scrubbed(error: Exception, *dsns: str) -> click.ClickException:
    """A one-line error naming no database password."""
    secrets = tuple(secret for dsn in dsns for secret in dsn_secrets(dsn))
    return click.ClickException(scrub(str(error), secrets))


@main.command()
@settings_options(SETTINGS)
def serve(**options: Any) -> None:
    """Serve the purge-cache API in the foreground until SIGTERM or Ctrl-C.

    Every log line, a start-up problem's included, is one JSON object on stderr.

    \b
    Examples:
      purgecache serve
      purgecache serve --port 9000 --root-url https://tc.example.com --db sqlite:////var/lib/pc.db
    """
    with _server_installed():
        from purgecache.server import StartupError, run

        try:
            run(Settings(**options))
        except StartupError:
            raise SystemExit(1) from None  # already logged


def _database_settings(db_url: str, data_dir: str) -> Settings:
    """The resolved settings of a database command (logging set up to mask its password)."""
    from purgecache.logformat import configure_logging

    configure_logging(dsn_secrets(db_url))
    try:
        return Settings(db_url=db_url, data_dir=data_dir).resolved()
    except ValueError as error:
        raise click.ClickException(str(error)) from error


def _run_database(work: Callable[[], Coroutine[Any, Any, T]], db_url: str) -> T:
    """Run `work` to its end; its storage and start-up errors as one line."""
    from purgecache.server import StartupError
    from purgecache.storage import StorageError

    try:
        return asyncio.run(work())
    except (StartupError, StorageError) as error:
        raise _scrubbed(error, db_url) from error


def _run_storage(work: Callable[[Storage], Awaitable[T]], db_url: str, data_dir: str) -> T:
    """Upgrade the schema, then run `work` on the storage; one-line errors."""
    from purgecache.server import upgrade_database
    from purgecache.storage import open_storage

    settings = _database_settings(db_url, data_dir)

    async def run() -> T:
        await upgrade_database(settings)
        storage = open_storage(settings.db_url)
        try:
            return await work(storage)
        finally:
            await storage.close()

    return _run_database(run, db_url)


DATABASE_OPTIONS = settings_options(settings_named("db_url", "data_dir"))


@main.command()
@DATABASE_OPTIONS
@settings_options(
    settings_named("history_retention_ms", "worker_retention_ms", "activity_window_ms")
)
def expire(
    db_url: str,
    data_dir: str,
    history_retention_ms: int,
    worker_retention_ms: int,
    activity_window_ms: int,
) -> None:
    """Delete purge requests whose retention has passed, history events older than the
    history retention, and workers not heard from for the worker retention; record the purges
    every active worker applied (purge.converged) and end those kept until applied that no
    longer need to be (safe to run from cron, and from several machines at once: one of them
    does the work)."""
    with _server_installed():
        from purgecache.service import PurgeService

        async def work(storage: Storage) -> tuple[int | None, int, int, int]:
            service = PurgeService(
                storage,
                retention_ms=0,  # not purging: only the expiry job's settings matter
                history_retention_ms=history_retention_ms,
                worker_retention_ms=worker_retention_ms,
                activity_window_ms=activity_window_ms,
            )
            removed = await service.expire()
            if removed is None:
                return None, 0, 0, 0
            settled = await service.settle()
            pruned = await service.prune_history()
            return removed, settled, pruned, await service.prune_workers()

        removed, settled, pruned, workers = _run_storage(work, db_url, data_dir)
    if removed is None:
        click.echo("another process is expiring purge requests right now; nothing to do")
    else:
        click.echo(
            f"expired {removed} purge request(s), {pruned} history event(s), "
            f"{workers} worker(s) not heard from; {settled} purge(s) converged or ended "
            "after being kept until applied"
        )


@main.group()
def db() -> None:
    """Manage the database: schema upgrades, backups and copies."""


@db.command("upgrade")
@DATABASE_OPTIONS
def db_upgrade(db_url: str, data_dir: str) -> None:
    """Create the schema or bring it up to date (never downgrades); says which database (its
    password masked) and whether anything changed."""
    with _server_installed():
        from purgecache.server import upgrade_database

        settings = _database_settings(db_url, data_dir)
        before, after = _run_database(lambda: upgrade_database(settings), db_url)
    click.echo(f"database {redact_dsn(settings.db_url)}: {_upgrade_outcome(before, after)}")


def _upgrade_outcome(before: int, after: int) -> str:
    if before == after:
        return f"schema already at version {after}; nothing changed"
    if before == 0:
        return f"schema created at version {after}"
    return f"schema upgraded from version {before} to {after}"


@db.command("backup")
@DATABASE_OPTIONS
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
def db_backup(db_url: str, data_dir: str, target: Path) -> None:
    """Copy the SQLite database to the new file TARGET, safely while `serve` runs.

    The copy is one self-contained SQLite file. To restore it, stop `serve`, put it in place
    of the database file and delete that file's -wal and -shm files (see docs/upgrade.md).
    PostgreSQL databases are backed up with pg_dump instead.

    \b
    Example:
      purgecache db backup /var/backups/purgecache-$(date +%F).db
    """
    from purgecache.storage.backup import backup_sqlite
    from purgecache.storage.base import StorageError
    from purgecache.storage.sqlite import sqlite_path

    settings = _database_settings(db_url, data_dir)
    shown = redact_dsn(settings.db_url)
    if not settings.db_url.startswith("sqlite:"):
        raise click.ClickException(
            f"{shown} is PostgreSQL: back it up with pg_dump, e.g. "
            f"pg_dump --format=custom --file={shlex.quote(str(target))} '{shown}'"
        )
    try:
        version = backup_sqlite(sqlite_path(settings.db_url), target)
    except StorageError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"backed up database {shown} (schema version {version}) to {target}")


@db.command("copy")
@click.option("--from", "source", required=True, help="Database to read: ours, or upstream's.")
@click.option("--to", "target", required=True, help="Database to write (schema created).")
def db_copy(source: str, target: str) -> None:
    """Copy open purge requests from one database into another.

    Either side may be a purgecache SQLite or PostgreSQL database, or an upstream Taskcluster
    PostgreSQL database (its cache_purges table: moving in, or rolling back to upstream).
    Expired requests are skipped; a request already in the target keeps the later time.

    \b
    Example:
      purgecache db copy --from postgresql://tc@db/taskcluster --to sqlite:////var/lib/pc.db
    """
    with _server_installed():
        from purgecache.logformat import configure_logging
        from purgecache.service import wall_clock_ms
        from purgecache.storage import StorageError
        from purgecache.storage.copy import copy_requests

        configure_logging(dsn_secrets(source) + dsn_secrets(target))
        try:
            copied, kind = asyncio.run(copy_requests(source, target, wall_clock_ms()))
        except (StorageError, ValueError) as error:
            raise _scrubbed(error, source, target) from error
    click.echo(f"copied {copied} purge request(s) from {kind}")


def _register_client_commands() -> None:
    from purgecache.agent.cli import register as register_agent
    from purgecache.cli_client import register
    from purgecache.cli_clients import register as register_clients
    from purgecache.cli_events import register as register_events
    from purgecache.cli_status import register as register_status

    register(main)
    register_status(main)
    register_agent(main)
    register_clients(main, settings_options(settings_named("clients_file", "data_dir")))
    register_events(main, DATABASE_OPTIONS, _run_storage)


_register_client_commands()

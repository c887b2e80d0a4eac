"""`purgecache agent ...`: the worker side, for a worker's task hooks and as a daemon.

Thin click commands over `CacheRegistry`, `sync_once` and `run_daemon`. Nothing that talks to
the service (httpx, the client) is imported until a command needs it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from purgecache.agent.files import CorruptFile
from purgecache.agent.options import (
    CACHE_ROOT,
    CLOCK_SKEW,
    DEADLINE,
    INTERVAL,
    OWNER_PID,
    POOL,
    REPORT_INTERVAL,
    TIMEOUT,
    WORKER_GROUP,
    WORKER_ID,
)
from purgecache.agent.processes import task_processes
from purgecache.agent.registry import CacheRegistry, InstanceInfo, RegistryError, Released
from purgecache.agent.settings import AgentSettings
from purgecache.agent.trash import Problem
from purgecache.model import format_time

if TYPE_CHECKING:
    from purgecache.agent.receipts import Stock
    from purgecache.agent.sync import SyncReport

EXIT_FAILED = 1  # some deletions failed (the others were done)
EXIT_USAGE = 2  # bad usage or configuration (click's own status for bad arguments)

EPILOG = """\b
Connection to the service, as for the official Taskcluster clients:
  TASKCLUSTER_ROOT_URL, TASKCLUSTER_CLIENT_ID, TASKCLUSTER_ACCESS_TOKEN,
  TASKCLUSTER_CERTIFICATE, or TASKCLUSTER_PROXY_URL (requests go there unsigned).
  Needs the scope purge-cache:purge-requests::POOL, and to report receipts
  purge-cache:report::POOL:GROUP/ID (without it the agent syncs as before).

\b
Exit status: 0 done; 1 some deletions failed (the others were done);
2 bad usage or configuration; 3 service unreachable (nothing deleted).
See docs/agent.md.
"""

log = logging.getLogger("purgecache.agent")


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    layout = "%(asctime)s " if verbose else ""
    handler.setFormatter(logging.Formatter(f"{layout}purgecache agent: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO if verbose else logging.WARNING)
    log.propagate = False


@contextmanager
def _reporting() -> Iterator[None]:
    """Registry errors become one `Error:` line: usage ones exit 2, I/O ones 1."""
    try:
        yield
    except (RegistryError, CorruptFile, ValueError) as error:
        click.echo(f"Error: {error}", err=True)
        raise click.exceptions.Exit(EXIT_USAGE) from None
    except OSError as error:
        click.echo(f"Error: {error}", err=True)
        raise click.exceptions.Exit(EXIT_FAILED) from None


def _registry(settings: AgentSettings) -> CacheRegistry:
    try:
        return CacheRegistry(settings.cache_root, unknown_error_ms=settings.clock_skew_ms)
    except OSError as error:
        click.echo(f"Error: cannot use cache root {settings.cache_root}: {error}", err=True)
        raise click.exceptions.Exit(EXIT_USAGE) from None


def _report_problems(problems: tuple[Problem, ...]) -> None:
    for problem in problems:
        click.echo(f"Error: {problem}", err=True)


@click.group(epilog=EPILOG)
def agent() -> None:
    """The worker side: caches on this worker's disk, and applying purge requests to them.

    \b
    Pre-task hook:   purgecache agent sync --pool P --cache-root D || true
                     dir=$(purgecache agent mount NAME --cache-root D | tail -n 1)
    Post-task hook:  purgecache agent release "$dir" --cache-root D
    Or as a daemon:  purgecache agent run --pool P --cache-root D
    """
    _setup_logging(verbose=False)


@agent.command()
@click.argument("cache_name", metavar="NAME")
@CACHE_ROOT
@CLOCK_SKEW
@OWNER_PID
def mount(cache_name: str, cache_root: Path, clock_skew_ms: int, owner_pid: int | None) -> None:
    """Hand a task an instance of the cache NAME and print its directory (last line).

    A free instance is reused (the newest); if every one is in use, or none exists, a new
    empty one is created. Purged instances are never handed out. Never contacts the service.

    The task holds it until `release`, a reboot, or the end of the process that runs it:
    the parent of this command (with the shell that started it, when the parent is a
    subshell such as `$(...)`), or --owner-pid.

    \b
    Example:
      dir=$(purgecache agent mount checkouts --cache-root /var/cache/tc | tail -n 1)
    """
    registry = _registry(AgentSettings(cache_root, clock_skew_ms=clock_skew_ms))
    try:
        owners = task_processes(owner_pid)
    except LookupError as error:
        click.echo(f"Error: --owner-pid: {error}", err=True)
        raise click.exceptions.Exit(EXIT_USAGE) from None
    with _reporting():
        path = registry.mount(cache_name, owners)
    click.echo(str(path))


@agent.command()
@click.argument("path", type=click.Path(path_type=Path))
@CACHE_ROOT
def release(path: Path, cache_root: Path) -> None:
    """Give back the instance at PATH (as `mount` printed it) when its task is done.

    If a purge came while the task used it, it is deleted now.
    """
    registry = _registry(AgentSettings(cache_root))
    with _reporting():
        outcome, problems = registry.release(path)
    messages = {
        Released.RELEASED: f"released {path}",
        Released.DELETED: f"deleted {path} (purged while in use)",
        Released.REPLACED: f"deleted {path} (no longer a directory; a link is not followed)",
        Released.NOT_IN_USE: f"{path} was not in use",
        Released.GONE: f"{path} does not exist (already deleted?)",
    }
    click.echo(messages[outcome], err=outcome in (Released.NOT_IN_USE, Released.GONE))
    _report_problems(problems)
    if problems:
        raise click.exceptions.Exit(EXIT_FAILED)


@agent.command(epilog=EPILOG)
@POOL
@CACHE_ROOT
@CLOCK_SKEW
@TIMEOUT
@DEADLINE
@WORKER_GROUP
@WORKER_ID
@REPORT_INTERVAL
def sync(
    pool: str,
    cache_root: Path,
    clock_skew_ms: int,
    timeout_ms: int,
    deadline_ms: int | None,
    worker_group: str,
    worker_id: str,
    report_interval_ms: int,
) -> None:
    """Apply the pool's new purge requests to the caches on this worker, once.

    Asks purgeRequests since the last sync (one request when there is nothing to do), and
    at most once a minute the pool's selectors (listPoolSelectors) for its own caches,
    deletes every instance created before its cache's `before`, marks instances in use
    for deletion on release, and only then remembers how far it got. Then, when receipts
    changed or --report-interval passed, reports them (reportWorkerSync) from a detached
    process: the command does not wait for it.

    \b
    Example (a pre-task hook; the task starts whatever the status):
      purgecache agent sync --pool proj-a/linux --cache-root /var/cache/tc || true
    """
    from purgecache.agent.fetch import FetchFailed, ServiceFetcher
    from purgecache.agent.selectors import PoolSelectors
    from purgecache.agent.sync import sync_once

    settings = AgentSettings(
        cache_root, pool, clock_skew_ms, timeout_ms=timeout_ms, deadline_ms=deadline_ms
    )
    deadline_s = None if deadline_ms is None else deadline_ms / 1000
    registry = _registry(settings)
    try:
        fetcher = ServiceFetcher(timeout_s=timeout_ms / 1000, deadline_s=deadline_s)
        with _reporting(), fetcher as fetch:
            selectors = PoolSelectors(registry.layout.root, fetch.selectors, registry.clock.wall_ms)
            report = sync_once(registry, fetch, pool, slack_ms=clock_skew_ms, selectors=selectors)
    except FetchFailed as error:
        click.echo(f"Error: {error}; caches kept, nothing deleted", err=True)
        raise click.exceptions.Exit(error.exit_code) from None
    for deleted in report.deleted:
        click.echo(f"deleted {deleted}")
    for doomed in report.doomed:
        click.echo(f"in use, deleted on release: {doomed}")
    for reclaimed in report.reclaimed:
        click.echo(f"free again, its task ended without a release: {reclaimed}")
    _report_problems(report.problems)
    click.echo(report.summary())
    settings = replace(
        settings,
        worker_group=worker_group,
        worker_id=worker_id,
        report_interval_ms=report_interval_ms,
    )
    _report_detached(registry, settings, report.eventful)
    _announce_refusal(registry, pool)
    if report.exit_code:
        raise click.exceptions.Exit(report.exit_code)


def _announce_refusal(registry: CacheRegistry, pool: str) -> None:
    """Print a refused report once (`run` logs it; `sync` learns it from the ledger)."""
    from purgecache.agent.report import announce

    refusal = announce(registry.layout.root, pool)
    if refusal is not None:
        log.warning("%s", refusal)


def _report_detached(registry: CacheRegistry, settings: AgentSettings, eventful: bool) -> None:
    """Report from a child process of its own session with no terminal or pipes of ours, so
    that neither this command nor whoever reads its output waits for the service."""
    from purgecache.agent.report import due

    try:
        stock = due(registry, settings.pool, settings.report_interval_ms, eventful)
    except OSError as error:
        log.warning("no report: %s", error)
        return
    if stock is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        if os.fork():
            return
    except OSError as error:
        log.warning("no report: %s", error)
        return
    try:
        os.setsid()
        quiet = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(quiet, fd)
        _report_now(registry, settings, stock)
    finally:
        os._exit(0)


def _report_in_process(registry: CacheRegistry, settings: AgentSettings, eventful: bool) -> None:
    """`run`: report when due, then log a refusal once; a daemon has nothing to hold up."""
    from purgecache.agent.report import due

    try:
        stock = due(registry, settings.pool, settings.report_interval_ms, eventful)
    except OSError as error:
        log.warning("no report: %s", error)
        return
    if stock is None:
        return
    try:
        _report_now(registry, settings, stock)
    except Exception as error:  # a report must never stop the daemon's syncs
        log.warning("no report: %r", error)
    _announce_refusal(registry, settings.pool)


def _report_now(registry: CacheRegistry, settings: AgentSettings, stock: Stock) -> None:
    """Send a report; whatever happens, the agent goes on (see `report.report`)."""
    from purgecache.agent.report import REPORT_RETRIES, Identity, report
    from purgecache.client import ConfigurationError, PurgeCache

    who = Identity(settings.worker_group, settings.worker_id)
    timeout_s = settings.timeout_ms / 1000
    try:
        with PurgeCache.from_env(retries=REPORT_RETRIES, timeout=timeout_s) as client:
            report(
                client, registry.layout.root, settings.pool, who, stock, registry.clock.wall_ms()
            )
    except (ConfigurationError, OSError) as error:
        log.warning("no report: %s", error)


@agent.command(epilog=EPILOG)
@POOL
@CACHE_ROOT
@CLOCK_SKEW
@TIMEOUT
@INTERVAL
@WORKER_GROUP
@WORKER_ID
@REPORT_INTERVAL
def run(
    pool: str,
    cache_root: Path,
    clock_skew_ms: int,
    timeout_ms: int,
    interval_ms: int,
    worker_group: str,
    worker_id: str,
    report_interval_ms: int,
) -> None:
    """Sync now and then every interval, until SIGTERM or Ctrl-C (exit status 0).

    Frees the disk of purged caches even while no task arrives. While the service is
    unreachable it keeps every cache and retries after 2 s, 4 s, 8 s ... up to the interval.

    \b
    Example:
      purgecache agent run --pool proj-a/linux --cache-root /var/cache/tc --interval 2m
    """
    from purgecache.agent.daemon import Pacing, run_daemon
    from purgecache.agent.fetch import FetchFailed, ServiceFetcher
    from purgecache.agent.selectors import PoolSelectors
    from purgecache.agent.sync import sync_once

    _setup_logging(verbose=True)
    settings = AgentSettings(
        cache_root,
        pool,
        clock_skew_ms,
        interval_ms,
        timeout_ms,
        worker_group=worker_group,
        worker_id=worker_id,
        report_interval_ms=report_interval_ms,
    )
    registry = _registry(settings)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("stopping (signal %d)", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        fetch = ServiceFetcher(timeout_s=timeout_ms / 1000)
    except FetchFailed as error:
        click.echo(f"Error: {error}", err=True)
        raise click.exceptions.Exit(error.exit_code) from None
    log.info("syncing %s into %s from %s", pool, registry.layout.root, fetch.root_url)

    selectors = PoolSelectors(registry.layout.root, fetch.selectors, registry.clock.wall_ms)

    def sync_and_report() -> SyncReport:
        done = sync_once(
            registry, fetch, pool, slack_ms=clock_skew_ms, stop=stop.is_set, selectors=selectors
        )
        _report_in_process(registry, settings, done.eventful)
        return done

    with fetch:
        run_daemon(sync_and_report, stop, Pacing(interval_s=interval_ms / 1000))
    log.info("stopped")


def _row(info: InstanceInfo) -> dict[str, object]:
    record = info.record
    if record is None:
        return {"path": str(info.path), "state": "unreadable"}
    state = "free" if record.lease is None else "in use"
    if record.doomed:
        state += ", purged"
    return {
        "cache_name": record.cache_name,
        "state": state,
        "created": format_time(record.created.ms),
        "path": str(info.path / "data"),
    }


@agent.command("list")
@CACHE_ROOT
@click.option("--json", "as_json", is_flag=True, help='Print JSON: {"instances": [...]}.')
def list_instances(cache_root: Path, as_json: bool) -> None:
    """List the cache instances under the cache root."""
    registry = _registry(AgentSettings(cache_root))
    with _reporting():
        rows = [_row(info) for info in registry.instances()]
    if as_json:
        click.echo(json.dumps({"instances": rows}, indent=2))
        return
    if not rows:
        click.echo("no cache instances")
        return
    table = [("CACHE", "STATE", "CREATED", "PATH")] + [
        (
            json.dumps(row.get("cache_name", "?"), ensure_ascii=True),
            str(row["state"]),
            str(row.get("created", "-")),
            str(row["path"]),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(3)]
    for name, state, created, path in table:
        click.echo(f"{name:<{widths[0]}}  {state:<{widths[1]}}  {created:<{widths[2]}}  {path}")


def register(group: click.Group) -> None:
    """Add the agent command group to the main command group."""
    group.add_command(agent)

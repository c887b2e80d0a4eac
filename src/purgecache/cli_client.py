"""Client-side commands of the `purgecache` CLI (purge, list, requests, ping, signed-url).

Each command is a thin layer over `purgecache.client.PurgeCache.from_env()`: the connection
comes from the official clients' `TASKCLUSTER_*` variables, errors become one line on
stderr and an exit status from `EXIT_CODES` (never a traceback). The client is imported
only when a client command runs, so `serve` and `--help` do not load httpx.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import click

from purgecache.model import SINCE_FORMS, is_worker_pool_id, parse_duration, parse_typed_since

if TYPE_CHECKING:
    from purgecache.client import PurgeCache, PurgeCacheError, PurgeCacheRequestsEntry

EXIT_REFUSED = 1  # the service refused the request (400, 404 ...)
EXIT_USAGE = 2  # click's own status for bad arguments
EXIT_CONFIGURATION = 3
EXIT_AUTH = 4
EXIT_UNAVAILABLE = 5

# By the name of a client error class; an error's nearest class in this table decides.
EXIT_CODES = {
    "ConfigurationError": EXIT_CONFIGURATION,
    "AuthenticationFailed": EXIT_AUTH,
    "InsufficientScopes": EXIT_AUTH,
    "ConnectionFailed": EXIT_UNAVAILABLE,
    "ServerError": EXIT_UNAVAILABLE,
    "InvalidResponse": EXIT_UNAVAILABLE,
}
# Requests are signed when one of these TASKCLUSTER_* variables is set (or the proxy signs).
ANONYMOUS_UNLESS = ("CLIENT_ID", "PROXY_URL")
# The client's `GetEndpoint` names, as the CLI spells them (a test keeps them in step).
SIGNED_URL_ENDPOINTS = (
    "purge-requests",
    "all-purge-requests",
    "ping",
    "heartbeat",
    "lbheartbeat",
    "version",
)

EPILOG = """\b
Connection, as for the official Taskcluster clients:
  TASKCLUSTER_ROOT_URL      the deployment, e.g. https://tc.example.com
  TASKCLUSTER_CLIENT_ID     credentials; without a client id requests are anonymous
  TASKCLUSTER_ACCESS_TOKEN
  TASKCLUSTER_CERTIFICATE   only for temporary credentials
  TASKCLUSTER_PROXY_URL     if set, requests go there unsigned (taskcluster-proxy)

\b
Exit status: 0 done; 1 the service refused the request; 2 bad usage;
3 bad TASKCLUSTER_* settings; 4 credentials or scopes not accepted;
5 service unreachable, failing (5xx) or answering nonsense.
"""

JSON_HELP = "Print JSON (the API's own shape) instead of a table."
SINCE_HELP = f"Only requests from this time on (UTC unless it has an offset): {SINCE_FORMS}."


def exit_code_for(error: PurgeCacheError) -> int:
    """The exit status of a failed command."""
    names = (kind.__name__ for kind in type(error).__mro__)
    return next((EXIT_CODES[name] for name in names if name in EXIT_CODES), EXIT_REFUSED)


def describe(error: PurgeCacheError) -> str:
    """One line saying what went wrong (and the request id to quote, if any)."""
    from purgecache.client import ApiError, InsufficientScopes

    if not isinstance(error, ApiError):
        return str(error).replace("\n", " ")
    text = error.summary + (f" (request id {error.request_id})" if error.request_id else "")
    anonymous = not any(os.environ.get(f"TASKCLUSTER_{name}") for name in ANONYMOUS_UNLESS)
    if isinstance(error, InsufficientScopes) and anonymous:
        text += "; no credentials were sent: set TASKCLUSTER_CLIENT_ID and ACCESS_TOKEN"
    return text


def connect() -> PurgeCache:
    """The client, configured by the TASKCLUSTER_* variables."""
    from purgecache.client import PurgeCache

    return PurgeCache.from_env()


@contextmanager
def reporting() -> Iterator[None]:
    """Turn client errors into one-line messages and exit statuses."""
    from purgecache.client import PurgeCacheError

    try:
        yield
    except PurgeCacheError as error:
        click.echo(f"Error: {describe(error)}", err=True)
        raise click.exceptions.Exit(exit_code_for(error)) from None


def _pool(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not is_worker_pool_id(value):
        raise click.BadParameter(
            f"{value!r} is not provisionerId/workerType (each 1-38 of A-Z a-z 0-9 _ -)"
        )
    return value


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | str | None:
    """An age (2h) becomes the time that long ago; a time is checked here, so that nothing is
    sent for what the service would refuse or misread, and goes to the service as typed."""
    if value is None:
        return None
    try:
        age = parse_duration(value)
    except ValueError:
        try:
            parse_typed_since(value)
        except ValueError as error:
            raise click.BadParameter(str(error)) from None
        return value
    return datetime.now(UTC) - timedelta(milliseconds=age)


def _seconds(ctx: click.Context, param: click.Parameter, value: str) -> float:
    try:
        return parse_duration(value) / 1000
    except ValueError as error:
        raise click.BadParameter(str(error)) from error


def _printable(text: str) -> str:
    """A table cell: control characters escaped, an empty name shown as ""."""
    if not text:
        return '""'
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def show_entries(entries: Iterable[PurgeCacheRequestsEntry], as_json: bool) -> None:
    """Print purge requests as JSON (`{"requests": [...]}`) or as an aligned table."""
    entries = list(entries)
    if as_json:
        click.echo(json.dumps({"requests": [entry.to_json() for entry in entries]}, indent=2))
        return
    if not entries:
        click.echo("no open purge requests")
        return
    rows = [("WORKER POOL", "CACHE", "BEFORE")] + [
        (e.worker_pool_id, _printable(e.cache_name), e.to_json()["before"]) for e in entries
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for pool, cache, before in rows:
        click.echo(f"{pool:<{widths[0]}}  {cache:<{widths[1]}}  {before}")


@click.command(epilog=EPILOG)
@click.argument("pool", callback=_pool)
@click.argument("caches", metavar="CACHE...", nargs=-1, required=True)
def purge(pool: str, caches: tuple[str, ...]) -> None:
    """Purge the caches CACHE... of worker pool POOL (provisionerId/workerType).

    Workers of the pool then delete their copies of each cache made before now. Needs the
    scope purge-cache:POOL:CACHE for every cache; stops at the first failure.

    \b
    Examples:
      purgecache purge proj-a/linux checkouts
      purgecache purge proj-a/linux checkouts sccache node-modules
    """
    with reporting(), connect() as client:
        for cache in caches:
            client.purge_cache(pool, cache)
            click.echo(f"purged {_printable(cache)} on {pool}")


@click.command("list", epilog=EPILOG)
@click.option("--pool", callback=_pool, help="Only this worker pool (provisionerId/workerType).")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def list_requests(pool: str | None, as_json: bool) -> None:
    """List every open purge request, all pages (scope purge-cache:all-purge-requests).

    \b
    Examples:
      purgecache list
      purgecache list --pool proj-a/linux
      purgecache list --json | jq -r '.requests[].cacheName'
    """
    with reporting(), connect() as client:
        pages = client.all_purge_requests_pages()
        entries = [e for page in pages for e in page.requests]
    show_entries((e for e in entries if pool in (None, e.worker_pool_id)), as_json)


@click.command(epilog=EPILOG)
@click.argument("pool", callback=_pool)
@click.option("--since", callback=_since, help=SINCE_HELP)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def requests(pool: str, since: datetime | str | None, as_json: bool) -> None:
    """Show what a worker of POOL is told to purge (scope purge-cache:purge-requests::POOL).

    \b
    Examples:
      purgecache requests proj-a/linux
      purgecache requests proj-a/linux --since 2h
      purgecache requests proj-a/linux --since 2026-01-01T00:00:00Z --json
    """
    with reporting(), connect() as client:
        answer = client.purge_requests(pool, since)
    show_entries(answer.requests, as_json)


@click.command(epilog=EPILOG)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON answer.")
def ping(as_json: bool) -> None:
    """Check that the service answers (no credentials needed).

    \b
    Examples:
      purgecache ping
      TASKCLUSTER_ROOT_URL=https://tc.example.com purgecache ping --json
    """
    with reporting(), connect() as client:
        answer = client.ping()
    if as_json:
        click.echo(json.dumps(answer.to_json()))
    else:
        click.echo(f"alive: {client.root_url} (up {answer.uptime:.1f} s)")


@click.command("signed-url", epilog=EPILOG)
@click.argument(
    "endpoint",
    metavar="ENDPOINT",
    type=click.Choice(SIGNED_URL_ENDPOINTS),
)
@click.argument("pool", required=False, callback=_pool)
@click.option("--since", callback=_since, help="purge-requests only. " + SINCE_HELP)
@click.option("--limit", type=click.IntRange(1), help="all-purge-requests only: page size.")
@click.option("--continuation-token", help="all-purge-requests only: the page to start at.")
@click.option(
    "--expires-in",
    default="15m",
    show_default=True,
    callback=_seconds,
    help="How long the URL works, e.g. 15m, 1h, 2d.",
)
def signed_url(
    endpoint: str,
    pool: str | None,
    since: datetime | str | None,
    limit: int | None,
    continuation_token: str | None,
    expires_in: float,
) -> None:
    """Print a pre-signed URL (Hawk bewit) for the GET endpoint ENDPOINT.

    ENDPOINT is purge-requests (give POOL), all-purge-requests, ping, heartbeat,
    lbheartbeat or version.

    Anyone holding the URL can make that one request, with your credentials' scopes, until
    it expires; no credentials are needed to use it (curl, a browser, a worker).

    \b
    Examples:
      purgecache signed-url purge-requests proj-a/linux
      purgecache signed-url purge-requests proj-a/linux --since 1d --expires-in 1h
      purgecache signed-url all-purge-requests --limit 100
      curl "$(purgecache signed-url all-purge-requests)"
    """
    from purgecache.client import PurgeCacheError

    with reporting(), connect() as client:
        try:
            url = client.signed_url(
                endpoint.replace("-", "_"),  # type: ignore[arg-type]  # checked by Choice
                pool,
                since=since,
                continuation_token=continuation_token,
                limit=limit,
                expires_in=expires_in,
            )
        except PurgeCacheError:
            raise
        except ValueError as error:  # arguments the endpoint does not take
            raise click.UsageError(str(error).replace("_", "-")) from error
    click.echo(url)


def register(group: click.Group) -> None:
    """Add the client commands to the main command group."""
    for command in (purge, list_requests, requests, ping, signed_url):
        group.add_command(command)

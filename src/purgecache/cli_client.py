"""Client-side commands of the `purgecache` CLI (purge, list, requests, ping, signed-url).

Each command is a thin layer over `purgecache.client.PurgeCache.from_env()`: the connection
comes from the official clients' `TASKCLUSTER_*` variables, errors become one line on
stderr and an exit status from `EXIT_CODES` (never a traceback). The client is imported
only when a client command runs, so `serve` and `--help` do not load httpx.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import click

from purgecache.model import (
    SINCE_FORMS,
    format_time,
    is_worker_pool_id,
    parse_duration,
    parse_typed_since,
    to_ms,
)

if TYPE_CHECKING:
    from purgecache.client import PurgeCache, PurgeCacheError, PurgeCacheRequestsEntry, PurgeEvent

EXIT_REFUSED = 1  # the service refused the request (400, 404 ...)
EXIT_USAGE = 2  # click's own status for bad arguments
EXIT_CONFIGURATION = 3
EXIT_AUTH = 4
EXIT_UNAVAILABLE = 5
EXIT_INTERRUPTED = 130  # the shell's status for a command ended by Ctrl-C (128 + SIGINT)
# An error line longer than this is cut (a 5,000-character cache name is echoed by the service).
MAX_ERROR_CHARS = 300

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
    "list-purge-history",
    "purge-status",
    "pool-caches",
    "list-pool-selectors",
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
5 service unreachable, failing (5xx) or answering nonsense; 6 purge --wait timed out
before every active worker applied the purge; 130 interrupted (Ctrl-C).
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
        return shortened(str(error).replace("\n", " "))
    text = shortened(error.summary)
    text += f" (request id {error.request_id})" if error.request_id else ""
    anonymous = not any(os.environ.get(f"TASKCLUSTER_{name}") for name in ANONYMOUS_UNLESS)
    if isinstance(error, InsufficientScopes) and anonymous:
        text += "; no credentials were sent: set TASKCLUSTER_CLIENT_ID and ACCESS_TOKEN"
    return text


def shortened(text: str) -> str:
    """`text`, cut to MAX_ERROR_CHARS with a note of how much was left out."""
    if len(text) <= MAX_ERROR_CHARS:
        return text
    return f"{text[:MAX_ERROR_CHARS]}... ({len(text) - MAX_ERROR_CHARS} more characters)"


def connect() -> PurgeCache:
    """The client, configured by the TASKCLUSTER_* variables."""
    from purgecache.client import PurgeCache

    return PurgeCache.from_env()


@contextmanager
def reporting() -> Iterator[None]:
    """Turn client errors (and Ctrl-C) into one-line messages and exit statuses."""
    from purgecache.client import PurgeCacheError

    try:
        yield
    except PurgeCacheError as error:
        click.echo(f"Error: {describe(error)}", err=True)
        raise click.exceptions.Exit(exit_code_for(error)) from None
    except KeyboardInterrupt:
        click.echo("Error: interrupted", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


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


def _pool_or_pattern(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    return value if ctx.params.get("match") else _pool(ctx, param, value)


F = TypeVar("F", bound=Callable[..., Any])


def _match_option(help_text: str) -> Callable[[F], F]:
    """`--match` and the POOL argument it decides the reading of (a pool or a pattern)."""

    def decorate(command: F) -> F:
        command = click.argument("pool", callback=_pool_or_pattern)(command)
        return click.option("--match", is_flag=True, is_eager=True, help=help_text)(command)

    return decorate


@click.command(epilog=EPILOG)
@_match_option("POOL and CACHE are patterns (* ? and \\ escapes): purge every known pair matched.")
@click.argument("caches", metavar="CACHE...", nargs=-1, required=True)
@click.option("--dry-run", is_flag=True, help="--match: list what it matches; change nothing.")
@click.option("--yes", is_flag=True, help="--match: purge more than the confirm threshold.")
@click.option("--json", "as_json", is_flag=True, help="--match: print the answers as JSON.")
@click.option("--reason", help="Why (at most 1,000 characters), kept in the purge history.")
@click.option("--link", help="An http(s) URL about the purge (incident, bug), kept with it.")
@click.option(
    "--until-applied/--no-until-applied",
    default=None,
    help="Keep the purge past the retention until every active worker applied it (up to the "
    "service's maximum age); default: the service's setting.",
)
@click.option("--wait", is_flag=True, help="Then wait until every active worker applied it.")
@click.option(
    "--timeout",
    default="10m",
    callback=_seconds,
    show_default=True,
    help="--wait: give up (exit 6, stragglers printed) after this long.",
)
@click.option(
    "--min-workers",
    type=click.IntRange(0),
    default=0,
    help="--wait: also wait until at least N workers applied it.",
)
def purge(
    match: bool,
    pool: str,
    caches: tuple[str, ...],
    dry_run: bool,
    yes: bool,
    as_json: bool,
    reason: str | None,
    link: str | None,
    until_applied: bool | None,
    wait: bool,
    timeout: float,
    min_workers: int,
) -> None:
    """Purge the caches CACHE... of worker pool POOL (provisionerId/workerType).

    Workers of the pool then delete their copies of each cache made before now. Needs the
    scope purge-cache:POOL:CACHE for every cache; stops at the first failure.

    With --reason or --link the purge goes through this service's createPurge, which keeps
    them in the history; a service without it (upstream Taskcluster) is an error (exit 1)
    and nothing is purged: the reason is never dropped silently. So does --until-applied
    (or --no-until-applied), which keeps the purge served past the retention until every
    worker active on the pool applied it, or the service's maximum age passes.

    With --wait it then polls purgeStatus (scope purge-cache:history::POOL) until every
    worker active on the pool applied each purge (and at least --min-workers did): exit 0,
    or 6 when --timeout passes first, with the stragglers printed.

    With --match, POOL and the one CACHE are a selector (* any run of characters, in POOL
    not crossing the /; ? one character; \\ escapes * ? and \\): every (pool, cache) pair
    the service knows it matches (inventory, history, open requests) is listed, then purged
    unless --dry-run (--until-applied and --no-until-applied apply to every pair, and to how
    long agents are served the selector); more than the service's confirm threshold only
    with --yes. Without
    --match names are literal: `purge POOL 'a*'` purges the cache named a*.

    \b
    Examples:
      purgecache purge proj-a/linux checkouts
      purgecache purge --match 'proj-a/*' 'level-3-*' --dry-run
      purgecache purge --match 'proj-a/*' 'level-3-*' --yes --reason "toolchain bump"
      purgecache purge proj-a/linux checkouts sccache node-modules
      purgecache purge proj-a/linux checkouts --reason "corrupt after the 2.3 upgrade" \\
        --link https://bugs.example.com/1234
      purgecache purge proj-a/linux checkouts --wait --timeout 5m --min-workers 40
      purgecache purge proj-a/linux checkouts --until-applied
    """
    from purgecache.cli_status import wait_for

    if match:
        if len(caches) != 1 or wait:
            raise click.UsageError(
                "--match takes one POOL_PATTERN and one CACHE_PATTERN, no --wait"
            )
        from purgecache.cli_selectors import purge_by_selector

        with reporting(), connect() as client:
            raise click.exceptions.Exit(
                purge_by_selector(
                    client,
                    pool,
                    caches[0],
                    dry_run=dry_run,
                    yes=yes,
                    reason=reason,
                    link=link,
                    as_json=as_json,
                    until_applied=until_applied,
                )
            )
    if dry_run or yes or as_json:
        raise click.UsageError("--dry-run, --yes and --json go with --match")
    with reporting(), connect() as client:
        for cache in caches:
            client.purge_cache(pool, cache, reason=reason, link=link, until_applied=until_applied)
            click.echo(f"purged {_printable(cache)} on {pool}")
        if wait:
            raise click.exceptions.Exit(wait_for(client, pool, caches, timeout, min_workers))


def _ended(event: PurgeEvent) -> str:
    if event.end_reason is None:
        return "-"
    ended = "" if event.ended is None else " " + format_time(to_ms(event.ended))
    return event.end_reason + ended


def _event_row(event: PurgeEvent) -> tuple[str, ...]:
    why = " ".join(text for text in (event.reason, event.link) if text)
    return (
        format_time(to_ms(event.time)),
        event.worker_pool_id,
        _printable(event.cache_name),
        _printable(event.client_id) if event.client_id else "(anonymous)",
        event.endpoint,
        "until-applied" if event.until_applied else "-",
        _ended(event),
        _printable(why) if why else "",
    )


def show_events(events: list[PurgeEvent], as_json: bool) -> None:
    """Print purge events as JSON lines (one event each) or as an aligned table."""
    if as_json:
        for event in events:
            click.echo(json.dumps(event.to_json(), ensure_ascii=False))
        return
    if not events:
        click.echo("no purges recorded")
        return
    header = ("TIME", "WORKER POOL", "CACHE", "CLIENT", "VIA", "POLICY", "ENDED", "REASON")
    rows: list[tuple[str, ...]] = [header]
    rows += [_event_row(event) for event in events]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for *cells, why in rows:
        aligned = "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))
        click.echo(f"{aligned}  {why}".rstrip())


@click.command(epilog=EPILOG)
@click.argument("pool", required=False, callback=_pool)
@click.option("--cache", help="Only purges of this cache name.")
@click.option("--client", "client_id", help="Only purges made by this client id.")
@click.option(
    "--since",
    callback=_since,
    help="Only purges from this time on. " + SINCE_HELP.partition(": ")[2].capitalize(),
)
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="At most this many events, newest first.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON lines, one event each (for auditors)."
)
def history(
    pool: str | None,
    cache: str | None,
    client_id: str | None,
    since: datetime | str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Show who purged what, when, from where and why, newest first, whether each purge was
    kept until applied (POLICY `until-applied`, else `-`) and how it ended (converged,
    expired, superseded or cancelled, and when; `-` while it is open).

    Needs the scope purge-cache:history::POOL, or purge-cache:history::* without POOL. A
    service without the history (upstream Taskcluster) is an error (exit 1).

    \b
    Examples:
      purgecache history proj-a/linux
      purgecache history proj-a/linux --cache checkouts --since 2h
      purgecache history --client ci-admin --since 30d --json > purges.jsonl
    """
    events: list[PurgeEvent] = []
    total = 0
    with reporting(), connect() as client:
        token: str | None = None
        while len(events) < limit:
            page = client.list_purge_history(
                pool,
                cache_name=cache,
                client_id=client_id,
                since=since,
                continuation_token=token,
                limit=min(limit - len(events), 1000),
            )
            events += page.events
            total = page.total
            token = page.continuation_token
            if token is None:
                break
    show_events(events, as_json)
    if total > len(events):
        click.echo(f"{len(events)} of {total} purges shown; raise --limit for more", err=True)


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
        answer = client.purge_requests(pool, since, observer=True)
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
@click.option(
    "--since", callback=_since, help="purge-requests, list-pool-selectors only. " + SINCE_HELP
)
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
    lbheartbeat, version, list-purge-history (POOL optional), purge-status, pool-caches or
    list-pool-selectors (give POOL).

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


@click.command(epilog=EPILOG)
@_match_option("POOL and CACHE are the patterns of an applied selector: withdraw it.")
@click.argument("cache")
@click.option("--reason", help="Why (at most 1,000 characters), sent with purge.cancelled.")
def cancel(match: bool, pool: str, cache: str, reason: str | None) -> None:
    """Withdraw the open purge request of CACHE on worker pool POOL: workers no longer
    receive it, and the history records it as cancelled.

    Needs the scope purge-cache:POOL:CACHE. No open purge of CACHE is an error (404, exit
    1), as is a service without cancelPurge (upstream Taskcluster).

    With --match, POOL and CACHE are the patterns of an applied selector (purge --match):
    agents are no longer served it, and the open purges it wrote (not those purged again
    since) are withdrawn, each recorded as cancelled. Needs the scopes applying it needs.
    Without --match, the cache is also withdrawn from every open selector covering it, so
    agents leave it alone.

    \b
    Examples:
      purgecache cancel proj-a/linux checkouts --reason "purged the wrong pool"
      purgecache cancel --match 'proj-a/*' 'level-3-*' --reason "wrong selector"
    """
    if match:
        from purgecache.cli_selectors import checked

        checked(pool, cache)
    with reporting(), connect() as client:
        if match:
            done = client.cancel_selector_purge(pool, cache, reason=reason)
            made = format_time(to_ms(done.before))
            click.echo(
                f"cancelled the selector {pool} {_printable(cache)} applied {made}; "
                f"withdrew {len(done.pairs)} purges"
            )
            for worker_pool_id, cache_name in done.pairs:
                click.echo(f"  {worker_pool_id}  {_printable(cache_name)}")
            return
        before = client.cancel_purge(pool, cache, reason=reason)
    click.echo(
        f"cancelled the purge of {_printable(cache)} on {pool} made {format_time(to_ms(before))}"
    )


def register(group: click.Group) -> None:
    """Add the client commands to the main command group."""
    for command in (purge, cancel, history, list_requests, requests, ping, signed_url):
        group.add_command(command)

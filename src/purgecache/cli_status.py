"""Convergence commands of the `purgecache` CLI: `status` (how far each open purge of a pool
got on its workers) and the wait behind `purge --wait`."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import click

from purgecache.cli_client import EPILOG, JSON_HELP, _pool, _printable, connect, reporting
from purgecache.model import format_time, to_ms

if TYPE_CHECKING:
    from purgecache.client import PoolCaches, PurgeCache, PurgeConvergence, PurgeStatus

EXIT_NOT_CONVERGED = 6  # purge --wait: the timeout passed before every active worker applied
WAIT_POLL_SECONDS = 1.0
HEADINGS = ("CACHE", "BEFORE", "ACTIVE", "APPLIED", "IN USE", "FETCHED", "NOT SEEN", "FREED")


def _row(purge: PurgeConvergence) -> tuple[str, ...]:
    return (
        _printable(purge.cache_name),
        format_time(to_ms(purge.before)),
        *(str(n) for n in (purge.active_workers, purge.applied, purge.applied_in_use)),
        *(str(n) for n in (purge.fetched, purge.not_seen)),
        f"{purge.bytes_freed} B",
    )


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def show_stragglers(purge: PurgeConvergence) -> None:
    """The workers of a purge that have not applied it, with when each was last seen."""
    for worker in purge.stragglers:
        state = "fetched, not confirmed" if worker["state"] == "fetched" else "not seen"
        kind = "client id" if worker["identity"] == "clientId" else "worker"
        name = _printable(str(worker["worker"]))
        click.echo(f"  {kind} {name}: {state} (last seen {worker['lastSeen']})")
    if purge.stragglers_omitted:
        click.echo(f"  ... and {purge.stragglers_omitted} more")


def _shown_plainly(
    raw: Mapping[str, object], as_json: bool, items: Sequence[object], nothing: str
) -> bool:
    """Print the answer as the API's JSON, or say there is nothing; False: print a table."""
    if as_json:
        click.echo(json.dumps(raw, indent=2, ensure_ascii=False))
    elif not items:
        click.echo(f"{nothing} on {raw['workerPoolId']}")
    return as_json or not items


def show_status(status: PurgeStatus, as_json: bool) -> None:
    """Print a pool's convergence as the API's JSON or as a table with its stragglers."""
    if _shown_plainly(status.raw, as_json, status.purges, "no open purge requests"):
        return
    _table([HEADINGS, *(_row(purge) for purge in status.purges)])
    for purge in status.purges:
        if purge.stragglers:
            click.echo(f"{_printable(purge.cache_name)}:")
            show_stragglers(purge)


@click.command(epilog=EPILOG)
@click.argument("pool", callback=_pool)
@click.argument("cache", required=False)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def status(pool: str, cache: str | None, as_json: bool) -> None:
    """How far each open purge of POOL (or of CACHE only) got on the pool's active workers:
    applied (the worker's receipt), fetched but not confirmed, not seen since the purge.

    Workers that never report (official generic-worker) count by client id once they were
    served the purge: pools sharing one credential count as one worker, anonymous reads are
    not counted. Needs the scope purge-cache:history::POOL.

    \b
    Examples:
      purgecache status proj-a/linux
      purgecache status proj-a/linux checkouts --json
    """
    with reporting(), connect() as client:
        show_status(client.purge_status(pool, cache), as_json)


def converged(purges: list[PurgeConvergence], min_workers: int) -> bool:
    """Every active worker applied each purge, and at least `min_workers` did."""
    return all(p.converged and p.applied >= min_workers for p in purges)


def wait_for(
    client: PurgeCache, pool: str, caches: tuple[str, ...], timeout: float, min_workers: int
) -> int:
    """Poll `purgeStatus` until the purges of `caches` converge (0) or `timeout` seconds pass
    (EXIT_NOT_CONVERGED, stragglers printed)."""
    deadline = time.monotonic() + timeout
    while True:
        found = client.purge_status(pool).purges
        purges = [purge for purge in found if purge.cache_name in caches]
        if converged(purges, min_workers):
            for purge in purges:
                click.echo(f"applied {_printable(purge.cache_name)}: {purge.applied} worker(s)")
            return 0
        if time.monotonic() >= deadline:
            break
        time.sleep(min(WAIT_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
    for purge in purges:
        name = _printable(purge.cache_name)
        click.echo(f"not converged {name}: applied {purge.applied}/{purge.active_workers}")
        show_stragglers(purge)
    return EXIT_NOT_CONVERGED


def show_caches(held: PoolCaches, as_json: bool) -> None:
    """Print the caches held on a pool as the API's JSON or as a table."""
    if _shown_plainly(held.raw, as_json, held.caches, "no caches reported"):
        return
    rows: list[tuple[str, ...]] = [("CACHE", "WORKERS", "COPIES", "BYTES", "LAST USED")]
    for cache in held.caches:
        used = "" if cache.last_used is None else format_time(to_ms(cache.last_used))
        counts = (cache.workers, cache.instances, cache.bytes)
        rows.append((_printable(cache.cache_name), *(str(n) for n in counts), used))
    _table(rows)


@click.command(epilog=EPILOG)
@click.argument("pool", callback=_pool)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def caches(pool: str, as_json: bool) -> None:
    """The cache names the workers of POOL hold (those active within the service's activity
    window, from the inventory they report), with how many workers hold each, their copies,
    total size and latest use. Needs the scope purge-cache:history::POOL.

    \b
    Examples:
      purgecache caches proj-a/linux
      purgecache caches proj-a/linux --json
    """
    with reporting(), connect() as client:
        show_caches(client.pool_caches(pool), as_json)


def register(group: click.Group) -> None:
    """Add the convergence commands to the main command group."""
    group.add_command(status)
    group.add_command(caches)

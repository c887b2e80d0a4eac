"""`purgecache purge --match`: a selector purge from the command line, shown before it is
applied. A dry run prints what the selector matches and changes nothing; an apply dry-runs
first, shows the pairs, and applies with the digest of what it showed, so that a set that
changed in between is refused by the service (409) instead of purged unseen."""

from __future__ import annotations

import json

import click

from purgecache.client import PurgeCache, RequestRejected, SelectorPurge
from purgecache.selectors import PatternError, Selector

EXIT_REFUSED = 1


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    raise AssertionError("unreachable")


def show(answer: SelectorPurge, as_json: bool) -> None:
    """The pairs as a table (pool, cache, workers, bytes) with the totals and the digest, or
    the answer as JSON."""
    if as_json:
        click.echo(json.dumps(dict(answer.raw), ensure_ascii=False, indent=2))
        return
    rows = [("WORKER POOL", "CACHE", "WORKERS", "BYTES")] + [
        (p.worker_pool_id, p.cache_name, str(p.workers), str(p.bytes)) for p in answer.pairs
    ]
    if answer.pairs:
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        for pool, cache, workers, size in rows:
            click.echo(f"{pool:<{widths[0]}}  {cache:<{widths[1]}}  {workers:>{widths[2]}}  {size}")
    totals = answer.totals
    click.echo(
        f"{totals.get('pairs', 0)} caches on {totals.get('pools', 0)} pools, held by "
        f"{totals.get('workers', 0)} active workers ({_size(totals.get('bytes', 0))}); "
        f"digest {answer.digest}"
    )


def checked(pool_pattern: str, cache_pattern: str) -> None:
    """A usage error (exit 2, nothing sent) when a pattern is not one the syntax allows."""
    try:
        Selector(pool_pattern, cache_pattern)
    except PatternError as error:
        raise click.UsageError(str(error)) from None


def purge_by_selector(
    client: PurgeCache,
    pool_pattern: str,
    cache_pattern: str,
    *,
    dry_run: bool,
    yes: bool,
    reason: str | None,
    link: str | None,
    as_json: bool,
    until_applied: bool | None = None,
) -> int:
    """Dry-run the selector and show it; unless `dry_run`, apply it with the digest shown
    (past the service's confirm threshold only with `yes`; kept until applied by
    `until_applied`, None: the service's default). The exit status."""
    checked(pool_pattern, cache_pattern)
    preview = client.create_selector_purge(pool_pattern, cache_pattern, dry_run=True)
    show(preview, as_json)
    if dry_run:
        return 0
    if len(preview.pairs) > preview.confirm_threshold and not yes:
        click.echo(
            f"Error: the selector matches {len(preview.pairs)} caches, more than the service's "
            f"confirm threshold ({preview.confirm_threshold}); review them with --dry-run, "
            "then run again with --yes to purge them",
            err=True,
        )
        return EXIT_REFUSED
    try:
        applied = client.create_selector_purge(
            pool_pattern,
            cache_pattern,
            digest=preview.digest,
            reason=reason,
            link=link,
            until_applied=until_applied,
        )
    except RequestRejected as error:
        if error.code != "RequestConflict":
            raise
        click.echo(
            "Error: the caches the selector matches changed since they were listed; nothing "
            "was purged: run the command again and review the new list",
            err=True,
        )
        return EXIT_REFUSED
    if as_json:
        show(applied, as_json)
    else:
        before = applied.raw.get("before")
        click.echo(
            f"purged {len(applied.pairs)} caches (before {before}); selector kept for agents"
        )
    return 0

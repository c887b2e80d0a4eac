"""`purgecache events`: the event deliveries not yet made (pending and failed), `events
retry` / `events drop` to act on failed ones, and `events targets` for where events go. They
work on the database directly, like `purgecache expire`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import click

from purgecache.model import format_time

if TYPE_CHECKING:
    from purgecache.storage import Storage
    from purgecache.storage.outbox import Delivery

RunStorage = Callable[[Callable[["Storage"], Awaitable[Any]], str, str], Any]
F = Callable[..., Any]


def _deliveries(count: int, kind: str = "") -> str:
    """`1 delivery`, `2 failed deliveries`..."""
    return f"{count} {kind}deliver{'y' if count == 1 else 'ies'}"


def _state(delivery: Delivery) -> str:
    return "failed" if delivery.failed_at is not None else "pending"


def _row(delivery: Delivery) -> list[str]:
    return [
        _state(delivery),
        delivery.event_id,
        delivery.kind,
        f"{delivery.worker_pool_id}:{delivery.cache_name}",
        delivery.target,
        str(delivery.attempts),
        format_time(delivery.created_at),
        (delivery.last_error or "")[:80],
    ]


def show(deliveries: list[Delivery]) -> None:
    """An aligned table of deliveries (or a line saying there are none)."""
    if not deliveries:
        click.echo("no pending or failed event deliveries")
        return
    rows = [["STATE", "EVENT ID", "EVENT", "POOL:CACHE", "TARGET", "ATTEMPTS", "CREATED", "ERROR"]]
    rows += [_row(delivery) for delivery in deliveries]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def register(main: click.Group, database_options: Callable[[F], F], run: RunStorage) -> None:
    """Add the `events` group to the CLI."""

    @main.group(invoke_without_command=True)
    @database_options
    @click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
    @click.pass_context
    def events(ctx: click.Context, db_url: str, data_dir: str, limit: int) -> None:
        """List event deliveries not yet made: pending ones (still retried) and failed ones
        (given up after 24 h; see `events retry` and `events drop`)."""
        ctx.obj = (db_url, data_dir)
        if ctx.invoked_subcommand is None:
            show(run(lambda storage: storage.event_deliveries(limit), db_url, data_dir))

    target_option = click.option("--target", help="Only this target (amqp, webhook:<url>).")
    event_option = click.option("--event-id", help="Only this event.")

    @events.command()
    @target_option
    @event_option
    @click.pass_obj
    def retry(obj: tuple[str, str], target: str | None, event_id: str | None) -> None:
        """Make failed deliveries due now (the running service delivers them)."""
        count = run(lambda storage: storage.retry_events(target, event_id), *obj)
        click.echo(f"{_deliveries(count, 'failed ')} to retry")

    @events.command()
    @target_option
    @event_option
    @click.option("--pending", is_flag=True, help="Drop pending deliveries too, not only failed.")
    @click.pass_obj
    def drop(obj: tuple[str, str], target: str | None, event_id: str | None, pending: bool) -> None:
        """Forget failed deliveries (never delivered)."""
        count = run(lambda storage: storage.drop_events(target, event_id, pending), *obj)
        click.echo(f"{_deliveries(count)} dropped")

    @events.command()
    @click.option(
        "--remove",
        "removed",
        multiple=True,
        metavar="TARGET",
        help="Unregister this target (repeatable) and drop its undelivered deliveries.",
    )
    @click.pass_obj
    def targets(obj: tuple[str, str], removed: tuple[str, ...]) -> None:
        """List the registered event targets, or remove some. Every new event gets a delivery
        per registered target; the serving processes register theirs at start-up and never
        remove one (a replica with other settings would take another's), so a target dropped
        from the configuration keeps getting events until removed here."""
        registered = run(lambda storage: storage.event_targets(), *obj)
        if not removed:
            click.echo("\n".join(registered) or "no event target registered")
            return
        unknown = sorted(set(removed) - set(registered))
        if unknown:
            raise click.UsageError(f"not registered: {', '.join(unknown)}")
        count = run(lambda storage: storage.remove_event_targets(list(removed)), *obj)
        click.echo(f"removed {', '.join(removed)}; {_deliveries(count)} not made dropped")

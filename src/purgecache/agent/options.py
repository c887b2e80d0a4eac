"""The options of the `purgecache agent` commands: each also read from a
`PURGECACHE_AGENT_*` variable (a flag wins over the variable, the variable over the default)."""

from __future__ import annotations

from pathlib import Path

import click

from purgecache.agent.settings import default_worker_id
from purgecache.cli_env import EnvOption
from purgecache.model import WORKER_PART_RE, is_worker_pool_id, parse_duration


def _pool(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not is_worker_pool_id(value):
        raise click.BadParameter(
            f"{value!r} is not provisionerId/workerType (each 1-38 of A-Z a-z 0-9 _ -)"
        )
    return value


def _worker_part(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    if value is None:  # --worker-id: from the hostname
        return default_worker_id()
    if not WORKER_PART_RE.fullmatch(value):
        raise click.BadParameter(f"{value!r} is not 1-38 of A-Z a-z 0-9 _ -")
    return value


def _ms(ctx: click.Context, param: click.Parameter, value: str) -> int:
    try:
        return parse_duration(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from error


def _positive_ms(ctx: click.Context, param: click.Parameter, value: str) -> int:
    ms = _ms(ctx, param, value)
    if ms <= 0:
        raise click.BadParameter("must be more than zero")
    return ms


def _optional_positive_ms(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> int | None:
    return None if value is None else _positive_ms(ctx, param, value)


CACHE_ROOT = click.option(
    "--cache-root",
    cls=EnvOption,
    envvar="PURGECACHE_AGENT_CACHE_ROOT",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory of the cache registry (created if missing). Env: PURGECACHE_AGENT_CACHE_ROOT.",
)
POOL = click.option(
    "--pool",
    cls=EnvOption,
    envvar="PURGECACHE_AGENT_POOL",
    required=True,
    callback=_pool,
    help="This worker's pool, provisionerId/workerType. Env: PURGECACHE_AGENT_POOL.",
)
CLOCK_SKEW = click.option(
    "--clock-skew",
    "clock_skew_ms",
    cls=EnvOption,
    envvar="PURGECACHE_AGENT_CLOCK_SKEW",
    default="5m",
    show_default=True,
    callback=_ms,
    help="How far clocks may disagree: each sync asks this much before its watermark, and a "
    "cache made before the service's clock was measured counts as this much older. "
    "Env: PURGECACHE_AGENT_CLOCK_SKEW.",
)
TIMEOUT = click.option(
    "--timeout",
    "timeout_ms",
    cls=EnvOption,
    envvar="PURGECACHE_AGENT_TIMEOUT",
    default="10s",
    show_default=True,
    callback=_positive_ms,
    help="Time limit of each attempt to reach the service (4 attempts). "
    "Env: PURGECACHE_AGENT_TIMEOUT.",
)
DEADLINE = click.option(
    "--deadline",
    "deadline_ms",
    cls=EnvOption,
    envvar="PURGECACHE_AGENT_DEADLINE",
    default=None,
    callback=_optional_positive_ms,
    help="Time limit of the whole exchange with the service, attempts and waits included "
    "(default: none, at most 4 x --timeout and 1.4 s of waits). Env: PURGECACHE_AGENT_DEADLINE.",
)
INTERVAL = click.option(
    "--interval",
    "interval_ms",
    cls=EnvOption,
    envvar="PURGECACHE_AGENT_INTERVAL",
    default="5m",
    show_default=True,
    callback=_positive_ms,
    help="Time between syncs, jittered ±20 %. Env: PURGECACHE_AGENT_INTERVAL.",
)
OWNER_PID = click.option(
    "--owner-pid",
    type=click.IntRange(min=1),
    default=None,
    help="The process that runs the task (default: the parent of this command): the lease "
    "ends when it does, if the task never releases.",
)
WORKER_GROUP = click.option(
    "--worker-group",
    cls=EnvOption,
    envvar="PURGECACHE_AGENT_WORKER_GROUP",
    default="local",
    show_default=True,
    callback=_worker_part,
    help="This worker's group, in its receipts. Env: PURGECACHE_AGENT_WORKER_GROUP.",
)
WORKER_ID = click.option(
    "--worker-id",
    cls=EnvOption,
    envvar="PURGECACHE_AGENT_WORKER_ID",
    default=None,
    callback=_worker_part,
    help="This worker's id, in its receipts (default: the hostname's first label, other "
    "characters than A-Z a-z 0-9 _ - made -, cut to 38). Env: PURGECACHE_AGENT_WORKER_ID.",
)
REPORT_INTERVAL = click.option(
    "--report-interval",
    "report_interval_ms",
    cls=EnvOption,
    envvar="PURGECACHE_AGENT_REPORT_INTERVAL",
    default="5m",
    show_default=True,
    callback=_positive_ms,
    help="Report receipts after a sync that changed them, otherwise at most this often. "
    "Env: PURGECACHE_AGENT_REPORT_INTERVAL.",
)

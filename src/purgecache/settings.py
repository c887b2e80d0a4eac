"""The service's configuration: one frozen object, built once by the CLI (flags > environment >
defaults) and handed to every worker process as it is.

Each operator-facing setting is declared once, as a field of `Settings` made by `setting(...)`:
its flag, environment variable, default and help. `SETTINGS` reads that table back; the CLI
builds `serve`'s options from it and `markdown_table` the README's configuration table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from purgecache.model import DAY_MS
from purgecache.redact import dsn_secrets, redact_dsn

T = TypeVar("T")
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
Kind = Literal["text", "integer", "duration", "choice", "switch", "list"]

DEFAULT_RETENTION_MS = 30 * DAY_MS
DEFAULT_HISTORY_RETENTION_MS = 400 * DAY_MS
DEFAULT_WORKER_RETENTION_MS = 30 * DAY_MS
DEFAULT_ACTIVITY_WINDOW_MS = DAY_MS
DEFAULT_UNTIL_APPLIED_MAX_AGE_MS = 90 * DAY_MS
DEFAULT_CACHE_TIME_MS = 10_000
DEFAULT_SELECTOR_CONFIRM_THRESHOLD = 20
DEFAULT_STALE_IF_ERROR_MS = 10 * 60_000
DEFAULT_AUTH_TIMEOUT_MS = 3_000
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Setting:
    """One row of the table: how an operator sets one field of `Settings`."""

    name: str  # the field of Settings
    flag: str  # as on the command line, e.g. "--db" or "--migrate/--no-migrate"
    envvar: str
    default: object
    help: str
    shown_default: str  # the default as documented (and shown by --help)
    kind: Kind = "text"
    choices: tuple[str, ...] = ()
    int_range: tuple[int, int] | None = None
    zero_allowed: bool = False  # a duration of 0s is meaningful (it turns something off)


def setting(
    default: T,
    *,
    flag: str,
    envvar: str,
    help: str,
    shown: str | None = None,
    duration: bool = False,
    choices: tuple[str, ...] = (),
    int_range: tuple[int, int] | None = None,
    zero_allowed: bool = False,
) -> T:
    """A `Settings` field that operators set by `flag` or `envvar` (the name is filled later)."""
    shown_default = str(default) if shown is None else shown
    kind = _kind(default, choices, duration)
    row = Setting(
        "", flag, envvar, default, help, shown_default, kind, choices, int_range, zero_allowed
    )
    result: T = field(default=default, metadata={"setting": row})
    return result


def _kind(default: object, choices: tuple[str, ...], duration: bool) -> Kind:
    if isinstance(default, bool):
        return "switch"
    if isinstance(default, tuple):
        return "list"
    if choices:
        return "choice"
    if duration:
        return "duration"
    return "integer" if isinstance(default, int) else "text"


@dataclass(frozen=True, repr=False)
class Settings:
    """Everything `serve` needs. No secret lives here but a password inside `db_url`, which
    the repr masks (the clients file is named, not read)."""

    host: str = setting(
        "127.0.0.1", flag="--host", envvar="PURGECACHE_HOST", help="Address to listen on."
    )
    port: int = setting(8080, flag="--port", envvar="PURGECACHE_PORT", help="Port to listen on.")
    root_url: str = setting(
        "",
        flag="--root-url",
        envvar="PURGECACHE_ROOT_URL",
        shown="http://<host>:<port>",
        help="Public root URL clients use (scheme://host[:port], no path).",
    )
    db_url: str = setting(
        "",
        flag="--db",
        envvar="PURGECACHE_DB",
        shown="sqlite:///<data dir>/purgecache.db",
        help="Database URL: sqlite:///relative.db, sqlite:////abs/path.db or "
        "postgresql://user@host:port/dbname (a password is masked in every output).",
    )
    db_listen_url: str = setting(
        "",
        flag="--db-listen-url",
        envvar="PURGECACHE_DB_LISTEN_URL",
        shown="",
        help="When --db goes through a transaction pooler (PgBouncer): a direct PostgreSQL URL "
        "for LISTEN and schema migrations; --db connections then prepare no statements.",
    )
    clients_file: str = setting(
        "",
        flag="--clients",
        envvar="PURGECACHE_CLIENTS",
        shown="<data dir>/clients.toml",
        help="TOML clients file; the default one is created with an admin credential on "
        "first start.",
    )
    data_dir: str = setting(
        "",
        flag="--data-dir",
        envvar="PURGECACHE_DATA_DIR",
        shown="$XDG_DATA_HOME/purgecache",
        help="Data directory (without XDG_DATA_HOME: ~/.local/share/purgecache).",
    )
    retention_ms: int = setting(
        DEFAULT_RETENTION_MS,
        flag="--retention",
        envvar="PURGECACHE_RETENTION",
        shown="30d",
        duration=True,
        help="How long a purge request stays open (units w d h m s ms, e.g. 12h, 1h30m).",
    )
    history_retention_ms: int = setting(
        DEFAULT_HISTORY_RETENTION_MS,
        flag="--history-retention",
        envvar="PURGECACHE_HISTORY_RETENTION",
        shown="400d",
        duration=True,
        help="How long the purge history (who purged what, when, from where and why) keeps "
        "an event; older events are pruned by the expiry job.",
    )
    worker_retention_ms: int = setting(
        DEFAULT_WORKER_RETENTION_MS,
        flag="--worker-retention",
        envvar="PURGECACHE_WORKER_RETENTION",
        shown="30d",
        duration=True,
        help="How long a worker (its receipts) or a fetching client id not heard from is "
        "remembered; older ones are pruned by the expiry job.",
    )
    activity_window_ms: int = setting(
        DEFAULT_ACTIVITY_WINDOW_MS,
        flag="--activity-window",
        envvar="PURGECACHE_ACTIVITY_WINDOW",
        shown="24h",
        duration=True,
        help="A worker that reported or fetched within this window counts as active in a "
        "purge's convergence (purgeStatus).",
    )
    until_applied_default: bool = setting(
        False,
        flag="--until-applied-default/--no-until-applied-default",
        envvar="PURGECACHE_UNTIL_APPLIED_DEFAULT",
        help="Keep every purge (v1 purgeCache included; createPurge may say otherwise with "
        "untilApplied) past --retention until every active worker of its pool applied it, "
        "up to --until-applied-max-age.",
    )
    until_applied_max_age_ms: int = setting(
        DEFAULT_UNTIL_APPLIED_MAX_AGE_MS,
        flag="--until-applied-max-age",
        envvar="PURGECACHE_UNTIL_APPLIED_MAX_AGE",
        shown="90d",
        duration=True,
        help="The longest a purge kept until applied stays open, applied everywhere or not "
        "(never less than --retention).",
    )
    selector_confirm_threshold: int = setting(
        DEFAULT_SELECTOR_CONFIRM_THRESHOLD,
        flag="--selector-confirm-threshold",
        envvar="PURGECACHE_SELECTOR_CONFIRM_THRESHOLD",
        int_range=(0, 10_000),
        help="A selector purge (createSelectorPurge) of more (pool, cache) pairs than this "
        "needs the digest of a dry run of the same set.",
    )
    cache_time_ms: int = setting(
        DEFAULT_CACHE_TIME_MS,
        flag="--cache-time",
        envvar="PURGECACHE_CACHE_TIME",
        shown="10s",
        duration=True,
        zero_allowed=True,
        help="How long a pool's requests are served from memory before the database is read "
        "again; 0s turns the cache off.",
    )
    stale_if_error_ms: int = setting(
        DEFAULT_STALE_IF_ERROR_MS,
        flag="--stale-if-error",
        envvar="PURGECACHE_STALE_IF_ERROR",
        shown="10m",
        duration=True,
        help="While the database is down, how long past --cache-time a pool's last good "
        "purgeRequests answer is still served.",
    )
    sqlite_synchronous: str = setting(
        "NORMAL",
        flag="--sqlite-synchronous",
        envvar="PURGECACHE_SQLITE_SYNCHRONOUS",
        choices=("NORMAL", "FULL"),
        help="NORMAL survives a crash of the service; FULL also a power loss (slower writes).",
    )
    workers: int = setting(
        1,
        flag="--workers",
        envvar="PURGECACHE_WORKERS",
        int_range=(1, 64),
        help="Worker processes.",
    )
    access_log: bool = setting(
        True,
        flag="--access-log/--no-access-log",
        envvar="PURGECACHE_ACCESS_LOG",
        help="One JSON line per request on stderr.",
    )
    interface: str = setting(
        "rsgi",
        flag="--interface",
        envvar="PURGECACHE_INTERFACE",
        choices=("rsgi", "asgi"),
        help="granian interface: rsgi is faster; asgi hands Hawk the raw request path (rsgi "
        "rebuilds it, which covers every Taskcluster client's spelling of pool ids).",
    )
    migrate: bool = setting(
        True,
        flag="--migrate/--no-migrate",
        envvar="PURGECACHE_MIGRATE",
        help="Apply missing database migrations at start-up (with --no-migrate, refuse to "
        "start on an outdated schema; run purgecache db upgrade).",
    )
    auth_root_url: str = setting(
        "",
        flag="--auth-root-url",
        envvar="PURGECACHE_AUTH_ROOT_URL",
        shown="",
        help="Delegate authentication to this Taskcluster deployment's auth service "
        "(authenticateHawk) instead of the clients file.",
    )
    auth_timeout_ms: int = setting(
        DEFAULT_AUTH_TIMEOUT_MS,
        flag="--auth-timeout",
        envvar="PURGECACHE_AUTH_TIMEOUT",
        shown="3s",
        duration=True,
        help="How long a request waits for the auth service of --auth-root-url (its first "
        "failure then fails requests at once until it answers again).",
    )
    body_timeout_ms: int = setting(
        30_000,
        flag="--body-timeout",
        envvar="PURGECACHE_BODY_TIMEOUT",
        shown="30s",
        duration=True,
        help="How long a request's body may take to arrive after its headers (a slower one "
        "is refused with 408 RequestTimeout; the headers themselves must arrive within 30s).",
    )
    trust_proxy: bool = setting(
        False,
        flag="--trust-proxy/--no-trust-proxy",
        envvar="PURGECACHE_TRUST_PROXY",
        help="Believe X-Forwarded-For for the client address in logs and the purge history.",
    )
    amqp_url: str = setting(
        "",
        flag="--amqp-url",
        envvar="PURGECACHE_AMQP_URL",
        shown="",
        help="Publish events (purge.created, purge.applied, purge.converged, purge.expired, "
        "purge.cancelled) to this AMQP 0-9-1 "
        "broker, e.g. amqp://user:password@host:5672/vhost (needs the [amqp] extra; the "
        "password is masked in every output).",
    )
    amqp_exchange: str = setting(
        "exchange/purgecache/v1/events",
        flag="--amqp-exchange",
        envvar="PURGECACHE_AMQP_EXCHANGE",
        help="The topic exchange events are published to (declared durable); routing key "
        "<event>.<provisionerId>.<workerType>.<cacheName or _>.",
    )
    webhooks: tuple[str, ...] = setting(
        (),
        flag="--webhook",
        envvar="PURGECACHE_WEBHOOKS",
        shown="",
        help="POST every event as JSON to this URL, signed (X-Purgecache-Signature); repeat "
        "for several (the variable: URLs separated by spaces). Needs --webhook-secret-file.",
    )
    webhook_secret_file: str = setting(
        "",
        flag="--webhook-secret-file",
        envvar="PURGECACHE_WEBHOOK_SECRET_FILE",
        shown="",
        help="File holding the webhooks' HMAC-SHA256 secret (surrounding whitespace ignored).",
    )
    event_lease_ms: int = setting(
        60_000,
        flag="--event-lease",
        envvar="PURGECACHE_EVENT_LEASE",
        shown="1m",
        duration=True,
        help="How long a process holds an event it is delivering before another may deliver "
        "it (after a crash, an event waits this long).",
    )
    event_retry_max_ms: int = setting(
        3_600_000,
        flag="--event-retry-max",
        envvar="PURGECACHE_EVENT_RETRY_MAX",
        shown="1h",
        duration=True,
        help="The longest wait between two attempts to deliver an event (the backoff doubles "
        "from 1s up to this, with jitter); a delivery still failing 24h after its event is "
        "marked failed (purgecache events).",
    )
    # Internal tuning, not offered to operators.
    cache_max_pools: int = 10_000
    expire_interval_ms: int = 3_600_000
    max_body_bytes: int = MAX_BODY_BYTES

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["db_url"] = redact_dsn(self.db_url)
        shown["db_listen_url"] = redact_dsn(self.db_listen_url)
        shown["amqp_url"] = redact_dsn(self.amqp_url)
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def secrets(self) -> tuple[str, ...]:
        """The database and broker passwords, to scrub from anything printed."""
        return (
            dsn_secrets(self.db_url) + dsn_secrets(self.db_listen_url) + dsn_secrets(self.amqp_url)
        )

    def resolved(self) -> Settings:
        """Fill the defaults that depend on other settings."""
        data_dir = Path(self.data_dir) if self.data_dir else default_data_dir()
        host_in_url = f"[{self.host}]" if ":" in self.host else self.host
        auth_root_url = normalize_root_url(self.auth_root_url) if self.auth_root_url else ""
        if self.db_listen_url and not (
            self.db_url.startswith(POSTGRES_SCHEMES)
            and self.db_listen_url.startswith(POSTGRES_SCHEMES)
        ):
            raise ValueError("--db-listen-url needs PostgreSQL URLs in both --db and itself")
        if self.webhooks and not self.webhook_secret_file:
            raise ValueError("--webhook needs --webhook-secret-file (every delivery is signed)")
        return replace(
            self,
            auth_root_url=auth_root_url,
            data_dir=str(data_dir),
            root_url=normalize_root_url(self.root_url or f"http://{host_in_url}:{self.port}"),
            db_url=self.db_url or f"sqlite:///{(data_dir / 'purgecache.db').resolve()}",
            clients_file=self.clients_file or str(data_dir / "clients.toml"),
        )


SETTINGS: tuple[Setting, ...] = tuple(
    replace(f.metadata["setting"], name=f.name) for f in fields(Settings) if f.metadata
)


def settings_named(*names: str) -> tuple[Setting, ...]:
    """The rows for these fields, in this order."""
    by_name = {row.name: row for row in SETTINGS}
    return tuple(by_name[name] for name in names)


def default_data_dir() -> Path:
    """`$PURGECACHE_DATA_DIR`, else `$XDG_DATA_HOME/purgecache`, else ~/.local/share/purgecache."""
    explicit = os.environ.get("PURGECACHE_DATA_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "purgecache"


def normalize_root_url(root_url: str) -> str:
    """Strip trailing slashes; refuse a URL that is not scheme://host[:port] (no path)."""
    url = root_url.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"root URL {root_url!r} must look like https://host[:port]")
    if parts.path or parts.query or parts.fragment:
        raise ValueError(f"root URL {root_url!r} must not have a path, query or fragment")
    return url


def _documented_default(row: Setting) -> str:
    if row.kind == "switch":
        return "on" if row.default else "off"
    return f"`{row.shown_default}`" if row.shown_default else "none"


def markdown_table(rows: tuple[Setting, ...] = SETTINGS) -> str:
    """The README's configuration table, one row per setting."""
    lines = ["| flag | variable | default | meaning |", "|---|---|---|---|"]
    lines += [
        f"| `{row.flag}` | `{row.envvar}` | {_documented_default(row)} | {row.help} |"
        for row in rows
    ]
    return "\n".join(lines) + "\n"

"""Running the service: checks made once before serving, the worker-side app factory, granian.

`serve` validates everything in the parent process (root URL, database, clients file, port) so
that a mistake is one clear log line and a non-zero exit, then hands the settings object to
granian's workers: granian calls our loader, `worker_app` bound to the settings, in each worker
(forked, or spawned with the loader pickled), so nothing travels through the environment.

The listening socket is bound here, once (`supervisor.bind_listener`), and inherited by the
workers. The clients file is copied to a private snapshot the workers load; on SIGHUP, or when
the file's inode, mtime or size changes (checked once a second), the supervisor re-reads it and
replaces the snapshot only if the file is valid; each worker notices the new snapshot within a
second and swaps its clients in place (no worker is replaced, no connection dropped).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shlex
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Coroutine
from functools import partial
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from purgecache import memtrace
from purgecache.api.app import PurgeCacheApp
from purgecache.api.endpoints import ENDPOINTS, Endpoint
from purgecache.auth.authenticators import Authenticator, LocalAuthenticator, RemoteAuthenticator
from purgecache.auth.clients import (
    ClientsFileError,
    ClientStore,
    ensure_admin_clients_file,
    file_signature,
    load_clients,
)
from purgecache.events.dispatcher import Dispatcher, Timing
from purgecache.events.sinks import Sink, WebhookSink, amqp_sink, webhook_client
from purgecache.logformat import configure_logging
from purgecache.logs import log_event
from purgecache.metrics import MULTIPROC_ENV, Metrics
from purgecache.redact import redact_dsn, scrub
from purgecache.service import PurgeService
from purgecache.settings import Settings
from purgecache.storage import SqliteStorage, open_storage
from purgecache.storage.migrations import migrations

CLIENTS_CHECK_SECONDS = 1.0  # how often the clients file's inode, mtime and size are looked at
LATEST_VERSIONS = {kind: migrations(kind)[-1][0] for kind in ("sqlite", "postgres")}
log = logging.getLogger("purgecache")


class StartupError(Exception):
    """The service cannot start; the message is the one line the operator sees."""


def version_info() -> dict[str, str]:
    """The Dockerflow version object: from $PURGECACHE_VERSION_FILE if set, else the package."""
    path = os.environ.get("PURGECACHE_VERSION_FILE")
    if path:
        data = json.loads(Path(path).read_text("utf-8"))
        return {key: str(data.get(key, "")) for key in ("source", "version", "commit", "build")}
    try:
        version = package_version("purgecache")
    except PackageNotFoundError:
        version = "dev"
    return {"source": "", "version": version, "commit": "", "build": ""}


def prepare(settings: Settings) -> tuple[Settings, ClientStore | None, bool]:
    """Resolve defaults, create the data directory, database schema and admin credential.

    Returns the resolved settings, the clients (None with remote authentication) and whether
    an admin credential was created.
    """
    try:
        settings = settings.resolved()
    except ValueError as error:
        raise StartupError(str(error)) from error
    created, clients = False, None
    if not settings.auth_root_url:
        clients_path = Path(settings.clients_file)
        try:
            if clients_path == Path(settings.data_dir) / "clients.toml":
                created = ensure_admin_clients_file(clients_path)
            clients = load_clients(clients_path)
        except (OSError, ValueError) as error:
            raise StartupError(str(error)) from error
    try:
        check_event_settings(settings)
    except (OSError, RuntimeError) as error:
        raise StartupError(str(error)) from error
    asyncio.run(upgrade_database(settings))
    return settings, clients, created


async def upgrade_database(settings: Settings) -> tuple[int, int]:
    """Create or upgrade the schema (with --no-migrate: check it); StartupError with one clear
    line if impossible. Returns the schema version before and after."""
    try:
        storage = open_storage(
            settings.db_url,
            sqlite_synchronous=settings.sqlite_synchronous,
            listen_url=settings.db_listen_url,
        )
        if isinstance(storage, SqliteStorage):
            storage.path.parent.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as error:
        raise _database_error(settings, error) from error
    try:
        before = await storage.schema_version()
        if settings.migrate:
            return before, await storage.upgrade()
        if before != LATEST_VERSIONS[storage_kind(settings)]:
            raise StartupError(_outdated_schema(settings, before))
        return before, before
    except StartupError:
        raise
    except Exception as error:
        raise _database_error(settings, error) from error
    finally:
        await storage.close()


def _outdated_schema(settings: Settings, version: int) -> str:
    """What --no-migrate says of an outdated schema: the exact command that upgrades it."""
    shown = redact_dsn(settings.db_url)
    masked = " (with the password masked here)" if shown != settings.db_url else ""
    return (
        f"database schema is at version {version}, this purgecache needs "
        f"{LATEST_VERSIONS[storage_kind(settings)]}: run "
        f"`purgecache db upgrade --db {shlex.quote(shown)}`{masked}"
    )


def _database_error(settings: Settings, error: Exception) -> StartupError:
    """`cannot use database URL: why`, with the URL's password masked and scrubbed from why."""
    why = scrub(str(error), settings.secrets())
    return StartupError(f"cannot use database {redact_dsn(settings.db_url)}: {why}")


def storage_kind(settings: Settings) -> str:
    """`sqlite` or `postgres`."""
    return "sqlite" if settings.db_url.startswith("sqlite:") else "postgres"


def build_app(
    settings: Settings, authenticator: Authenticator, endpoints: tuple[Endpoint, ...] = ENDPOINTS
) -> PurgeCacheApp:
    """The ASGI/RSGI app for resolved settings, serving `endpoints`."""
    metrics = Metrics()
    sinks = event_sinks(settings)
    storage = open_storage(
        settings.db_url,
        sqlite_synchronous=settings.sqlite_synchronous,
        listen_url=settings.db_listen_url,
    )
    service = PurgeService(
        storage,
        retention_ms=settings.retention_ms,
        history_retention_ms=settings.history_retention_ms,
        worker_retention_ms=settings.worker_retention_ms,
        activity_window_ms=settings.activity_window_ms,
        until_applied_default=settings.until_applied_default,
        until_applied_max_age_ms=settings.until_applied_max_age_ms,
        selector_confirm_threshold=settings.selector_confirm_threshold,
        cache_time_ms=settings.cache_time_ms,
        cache_max_pools=settings.cache_max_pools,
        stale_if_error_ms=settings.stale_if_error_ms,
        event_targets=[sink.target for sink in sinks],
    )

    async def close() -> None:
        await authenticator.close()
        await service.close()

    background = clients_follower(authenticator)
    if sinks:
        timing = Timing(lease_ms=settings.event_lease_ms, retry_cap_ms=settings.event_retry_max_ms)
        dispatcher = Dispatcher(
            storage, sinks, service.clock, timing, metrics.event_delivery, service.targets
        )
        background += (dispatcher.run,)

    return PurgeCacheApp(
        service,
        authenticator,
        root_url=settings.root_url,
        version=version_info(),
        max_body_bytes=settings.max_body_bytes,
        body_timeout_ms=settings.body_timeout_ms,
        expire_interval_ms=settings.expire_interval_ms,
        access_log_enabled=settings.access_log,
        trust_proxy=settings.trust_proxy,
        on_shutdown=close,
        background=background,
        metrics=metrics,
        endpoints=endpoints,
        events_enabled=bool(sinks),
    )


def check_event_settings(settings: Settings) -> None:
    """OSError or RuntimeError unless the webhook secret is readable and the [amqp] extra
    installed (when asked for)."""
    if settings.amqp_url:
        amqp_sink(settings.amqp_url, settings.amqp_exchange)
    if settings.webhooks and not webhook_secret(settings):
        raise RuntimeError(f"the webhook secret file {settings.webhook_secret_file} is empty")


def webhook_secret(settings: Settings) -> bytes:
    """The webhooks' shared secret, from --webhook-secret-file."""
    return Path(settings.webhook_secret_file).read_bytes().strip()


def event_sinks(settings: Settings) -> list[Sink]:
    """Where this service delivers events: the broker of --amqp-url, each --webhook."""
    sinks: list[Sink] = []
    if settings.amqp_url:
        sinks.append(amqp_sink(settings.amqp_url, settings.amqp_exchange))
    if settings.webhooks:
        secret, client = webhook_secret(settings), webhook_client()
        sinks += [WebhookSink(url, secret, client) for url in settings.webhooks]
    return sinks


def clients_follower(
    authenticator: Authenticator,
) -> tuple[Callable[[], Coroutine[Any, Any, None]], ...]:
    """What a worker runs beside its requests to follow its clients file, if it reads one."""
    if isinstance(authenticator, LocalAuthenticator) and authenticator.source is not None:
        return (authenticator.follow,)
    return ()


def authenticator_for(settings: Settings, clients_path: Path | None) -> Authenticator:
    """Remote authentication when an auth root URL is set, else the clients file."""
    if settings.auth_root_url:
        return RemoteAuthenticator(settings.auth_root_url, timeout=settings.auth_timeout_ms / 1000)
    assert clients_path is not None
    return LocalAuthenticator(load_clients(clients_path), clients_path)


def worker_app(settings: Settings, clients_snapshot: Path | None) -> PurgeCacheApp:
    """granian's loader, called in each worker process with the settings the parent checked."""
    configure_logging(settings.secrets())
    memtrace.install_from_environment()  # a debugging aid (bench/memory), off by default
    try:
        return build_app(settings, authenticator_for(settings, clients_snapshot))
    except Exception:
        log.exception("worker-failed")  # one JSON line, not multiprocessing's traceback
        raise SystemExit(1) from None


class ClientsSnapshot:
    """A private (0600) copy of the last valid clients file, for the workers to load and follow.

    Each copy gets a later mtime than the one before, so that the workers see every change
    even when a new copy reuses the inode and size of the old one.
    """

    def __init__(self, source: Path) -> None:
        self.source = source
        self._source_seen = file_signature(source)
        fd, name = tempfile.mkstemp(prefix="purgecache-clients-", suffix=".toml")
        os.close(fd)
        self.path = Path(name)
        self.path.write_bytes(source.read_bytes())
        self._written_ns = self.path.stat().st_mtime_ns

    def source_changed(self) -> bool:
        """Whether the source's inode, mtime or size changed since last asked."""
        found = file_signature(self.source)
        changed, self._source_seen = found != self._source_seen, found
        return changed

    def reload(self) -> None:
        """Take the source file if it is valid; otherwise keep the old copy and say why."""
        try:
            text = self.source.read_bytes()
            store = load_clients(self.source)
        except (OSError, ClientsFileError) as error:
            log_event(log, logging.ERROR, "clients-reload-failed", error=str(error))
            return
        tmp = self.path.with_suffix(".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(text)
        self._written_ns = max(time.time_ns(), self._written_ns + 1)
        os.utime(tmp, ns=(self._written_ns, self._written_ns))
        tmp.replace(self.path)
        log_event(log, logging.INFO, "clients-reloaded", clients=len(store.clients))

    def remove(self) -> None:
        """Delete the copy."""
        self.path.unlink(missing_ok=True)


def listen(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """The service's listening socket, which no other process can share (no SO_REUSEPORT:
    see `supervisor`); one line when the address is taken or unusable."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT only
        listener.bind((host, port))
        listener.listen(backlog)
    except OSError as error:
        listener.close()
        raise StartupError(f"cannot listen on {host}:{port}: {error.strerror}") from error
    listener.set_inheritable(True)
    return listener


def run(settings: Settings) -> None:
    """Serve in the foreground until SIGTERM/SIGINT.

    Every log line is JSON on stderr; a configuration mistake is logged (`startup-failed`) and
    raised as StartupError.
    """
    from purgecache.supervisor import Supervisor, poll_every

    log_config = configure_logging(settings.secrets())
    settings, clients, listener = checked(settings)
    metrics_dir = tempfile.mkdtemp(prefix="purgecache-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir  # prometheus_client reads it; set before any worker
    snapshot = None if clients is None else ClientsSnapshot(Path(settings.clients_file))
    server = Supervisor("purgecache.server:worker_app", listener, log_dictconfig=log_config,
                        **granian_options(settings))  # fmt: skip
    if snapshot is not None:
        server.on_reload(snapshot.reload)
        poll_every(CLIENTS_CHECK_SECONDS, snapshot.source_changed, server.request_reload)
    log_serving(settings, clients)
    try:
        server.serve(
            target_loader=partial(worker_app, settings, snapshot.path if snapshot else None),
            wrap_loader=False,
        )
    finally:
        listener.close()
        if snapshot is not None:
            snapshot.remove()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    log_event(log, logging.INFO, "stopped")


def checked(settings: Settings) -> tuple[Settings, ClientStore | None, socket.socket]:
    """`prepare` and the listening socket, a failure logged as `startup-failed`."""
    try:
        listener = listen(settings.host, settings.port)  # before anything is written to disk
    except StartupError as error:
        log_event(log, logging.ERROR, "startup-failed", error=str(error))
        raise
    try:
        settings, clients, created = prepare(settings)
    except StartupError as error:
        listener.close()
        log_event(log, logging.ERROR, "startup-failed", error=str(error))
        raise
    if created:
        log_event(
            log,
            logging.WARNING,
            "admin-credential-created",
            client_id="admin",
            scopes=["*"],
            clients_file=settings.clients_file,
            note="read the access token in the clients file",
        )
    return settings, clients, listener


def log_serving(settings: Settings, clients: ClientStore | None) -> None:
    """The start-up line: two URLs that answer in a browser (the admin page, `ping`; the API base
    itself is the v1 404) and what it uses (the database password masked)."""
    log_event(
        log,
        logging.INFO,
        "serving",
        admin_page=f"{settings.root_url}/",
        ping=f"{settings.root_url}/api/purge-cache/v1/ping",
        address=f"{settings.host}:{settings.port}",
        database=redact_dsn(settings.db_url),
        notifications=redact_dsn(settings.db_listen_url) or None,
        auth=settings.auth_root_url or settings.clients_file,
        clients=None if clients is None else len(clients.clients),
        workers=settings.workers,
        interface=settings.interface,
    )


def granian_options(settings: Settings) -> dict[str, Any]:
    """How granian runs the workers for these settings."""
    from granian.constants import Interfaces, Loops, TaskImpl

    return {
        "address": settings.host,
        "port": settings.port,
        "interface": Interfaces(settings.interface),
        "loop": Loops.uvloop,
        # Not granian's experimental Rust task implementation: about 15% less CPU per request,
        # but it leaked the response of every listing (bench/run's RSS probe: 5 GB).
        "task_impl": TaskImpl.asyncio,
        "workers": settings.workers,
        # granian's own lines (workers started, stopped, respawned) go through our JSON handler.
        "log_enabled": True,
        "workers_kill_timeout": 8,
        "respawn_interval": 1.0,
    }

"""Running the service: checks made once before serving, the worker-side app factory, granian.

`serve` validates everything in the parent process (root URL, database, clients file, port) so
that a mistake is one clear line and a non-zero exit, then hands the settings to granian's
workers. The clients file is copied to a private snapshot the workers load; SIGHUP re-reads the
file, replaces the snapshot only if the file is valid, and granian respawns the workers
gracefully (no request is dropped).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path

from purgecache.api.app import PurgeCacheApp
from purgecache.auth.authenticators import Authenticator, LocalAuthenticator, RemoteAuthenticator
from purgecache.auth.clients import (
    ClientsFileError,
    ClientStore,
    ensure_admin_clients_file,
    load_clients,
)
from purgecache.logs import log_event
from purgecache.metrics import MULTIPROC_ENV
from purgecache.service import PurgeService
from purgecache.settings import Settings
from purgecache.storage import SqliteStorage, open_storage
from purgecache.storage.migrations import migrations

SETTINGS_ENV = "PURGECACHE_INTERNAL_SETTINGS"
LATEST_VERSIONS = {kind: migrations(kind)[-1][0] for kind in ("sqlite", "postgres")}
SNAPSHOT_ENV = "PURGECACHE_INTERNAL_CLIENTS_SNAPSHOT"
log = logging.getLogger("purgecache")


class StartupError(Exception):
    """The service cannot start; the message is the one line the operator sees."""


def configure_logging(level: str = "INFO") -> None:
    """One line per message on stderr (messages are already JSON or plain sentences)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("purgecache")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


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
    asyncio.run(upgrade_database(settings))
    return settings, clients, created


async def upgrade_database(settings: Settings) -> None:
    """Create or upgrade the schema; StartupError with one clear line if impossible."""
    try:
        storage = open_storage(settings.db_url, sqlite_synchronous=settings.sqlite_synchronous)
        if isinstance(storage, SqliteStorage):
            storage.path.parent.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as error:
        raise StartupError(f"cannot use database {settings.db_url}: {error}") from error
    try:
        if settings.migrate:
            await storage.upgrade()
        elif (version := await storage.schema_version()) != LATEST_VERSIONS[storage_kind(settings)]:
            raise StartupError(
                f"database schema is at version {version}, this purgecache needs "
                f"{LATEST_VERSIONS[storage_kind(settings)]}: run `purgecache db upgrade`"
            )
    except StartupError:
        raise
    except Exception as error:
        raise StartupError(f"cannot use database {settings.db_url}: {error}") from error
    finally:
        await storage.close()


def storage_kind(settings: Settings) -> str:
    """`sqlite` or `postgres`."""
    return "sqlite" if settings.db_url.startswith("sqlite:") else "postgres"


def build_app(settings: Settings, authenticator: Authenticator) -> PurgeCacheApp:
    """The ASGI app for resolved settings."""
    storage = open_storage(settings.db_url, sqlite_synchronous=settings.sqlite_synchronous)
    service = PurgeService(
        storage,
        retention_ms=settings.retention_ms,
        cache_time_ms=settings.cache_time_ms,
        cache_max_pools=settings.cache_max_pools,
    )

    async def close() -> None:
        await authenticator.close()
        await storage.close()

    return PurgeCacheApp(
        service,
        authenticator,
        root_url=settings.root_url,
        version=version_info(),
        max_body_bytes=settings.max_body_bytes,
        expire_interval_ms=settings.expire_interval_ms,
        access_log_enabled=settings.access_log,
        trust_proxy=settings.trust_proxy,
        on_shutdown=close,
    )


def authenticator_for(settings: Settings, clients_path: Path | None) -> Authenticator:
    """Remote authentication when an auth root URL is set, else the clients file."""
    if settings.auth_root_url:
        return RemoteAuthenticator(settings.auth_root_url)
    assert clients_path is not None
    return LocalAuthenticator(load_clients(clients_path))


def worker_app() -> PurgeCacheApp:
    """granian's factory, called in each worker process with the settings the parent checked."""
    settings = Settings.from_json(os.environ[SETTINGS_ENV])
    configure_logging()
    snapshot = os.environ.get(SNAPSHOT_ENV)
    return build_app(settings, authenticator_for(settings, Path(snapshot) if snapshot else None))


class ClientsSnapshot:
    """A private (0600) copy of the last valid clients file, for the workers to load."""

    def __init__(self, source: Path) -> None:
        self.source = source
        fd, name = tempfile.mkstemp(prefix="purgecache-clients-", suffix=".toml")
        os.close(fd)
        self.path = Path(name)
        self.path.write_bytes(source.read_bytes())

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
        tmp.replace(self.path)
        log_event(log, logging.INFO, "clients-reloaded", clients=len(store.clients))

    def remove(self) -> None:
        """Delete the copy."""
        self.path.unlink(missing_ok=True)


def check_port_free(host: str, port: int) -> None:
    """Fail early, with one line, when the address is taken (granian would print a backtrace)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise StartupError(f"cannot listen on {host}:{port}: {error.strerror}") from error


def run(settings: Settings) -> None:
    """Serve in the foreground until SIGTERM/SIGINT; StartupError for configuration mistakes."""
    from granian.constants import Interfaces, Loops, TaskImpl
    from granian.server import Server

    settings, clients, created = prepare(settings)
    check_port_free(settings.host, settings.port)
    configure_logging()
    if created:
        log.warning(
            "created an admin credential (client id 'admin', scopes ['*']) in %s; "
            "read the access token there",
            settings.clients_file,
        )
    os.environ[SETTINGS_ENV] = settings.to_json()
    metrics_dir = tempfile.mkdtemp(prefix="purgecache-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir  # before any worker creates a metric
    snapshot = None if settings.auth_root_url else ClientsSnapshot(Path(settings.clients_file))
    if snapshot is not None:
        os.environ[SNAPSHOT_ENV] = str(snapshot.path)
    server = Server(
        "purgecache.server:worker_app",
        address=settings.host,
        port=settings.port,
        interface=Interfaces(settings.interface),
        loop=Loops.uvloop,
        # Not granian's experimental Rust task implementation: about 15% less CPU per request,
        # but it leaked the response of every listing (bench/run's RSS probe: 5 GB).
        task_impl=TaskImpl.asyncio,
        workers=settings.workers,
        factory=True,
        log_enabled=False,
        workers_kill_timeout=8,
        respawn_interval=1.0,
    )
    if snapshot is not None:
        server.on_reload(snapshot.reload)
    auth = (
        f"auth service {settings.auth_root_url}"
        if clients is None
        else f"clients {settings.clients_file} ({len(clients.clients)} client(s))"
    )
    log.info(
        "purgecache serving %s/api/purge-cache/v1/ on %s:%d (database %s, %s)",
        settings.root_url,
        settings.host,
        settings.port,
        settings.db_url,
        auth,
    )
    try:
        server.serve()
    except RuntimeError as error:
        raise StartupError(f"cannot listen on {settings.host}:{settings.port}: {error}") from error
    finally:
        if snapshot is not None:
            snapshot.remove()
        shutil.rmtree(metrics_dir, ignore_errors=True)

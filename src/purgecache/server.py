"""Running the service: checks made once before serving, the worker-side app factory, granian.

`serve` validates everything in the parent process (root URL, database, clients file) so that a
mistake is one clear line and a non-zero exit, then hands the settings to granian's workers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path

from purgecache.api.app import PurgeCacheApp
from purgecache.auth.clients import ClientStore, ensure_admin_clients_file, load_clients
from purgecache.service import PurgeService
from purgecache.settings import Settings
from purgecache.storage import SqliteStorage, open_storage

SETTINGS_ENV = "PURGECACHE_INTERNAL_SETTINGS"
log = logging.getLogger("purgecache")


class StartupError(Exception):
    """The service cannot start; the message is the one line the operator sees."""


def configure_logging(level: str = "INFO") -> None:
    """One JSON object per line on stderr (messages are already JSON or plain sentences)."""
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
        import json

        data = json.loads(Path(path).read_text("utf-8"))
        return {key: str(data.get(key, "")) for key in ("source", "version", "commit", "build")}
    try:
        version = package_version("purgecache")
    except PackageNotFoundError:
        version = "dev"
    return {"source": "", "version": version, "commit": "", "build": ""}


def prepare(settings: Settings) -> tuple[Settings, ClientStore, bool]:
    """Resolve defaults, create the data directory, database schema and admin credential.

    Returns the resolved settings, the clients and whether an admin credential was created.
    """
    try:
        settings = settings.resolved()
    except ValueError as error:
        raise StartupError(str(error)) from error
    created = False
    clients_path = Path(settings.clients_file)
    try:
        if clients_path == Path(settings.data_dir) / "clients.toml":
            created = ensure_admin_clients_file(clients_path)
        clients = load_clients(clients_path)
    except (OSError, ValueError) as error:
        raise StartupError(str(error)) from error
    asyncio.run(_upgrade(settings))
    return settings, clients, created


async def _upgrade(settings: Settings) -> None:
    try:
        storage = open_storage(settings.db_url, sqlite_synchronous=settings.sqlite_synchronous)
        if isinstance(storage, SqliteStorage):
            storage.path.parent.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as error:
        raise StartupError(f"cannot use database {settings.db_url}: {error}") from error
    try:
        await storage.upgrade()
    except Exception as error:
        raise StartupError(f"cannot use database {settings.db_url}: {error}") from error
    finally:
        await storage.close()


def build_app(settings: Settings, clients: ClientStore) -> PurgeCacheApp:
    """The ASGI app for resolved settings."""
    storage = open_storage(settings.db_url, sqlite_synchronous=settings.sqlite_synchronous)
    service = PurgeService(
        storage,
        retention_ms=settings.retention_ms,
        cache_time_ms=settings.cache_time_ms,
        cache_max_pools=settings.cache_max_pools,
    )
    return PurgeCacheApp(
        service,
        clients,
        root_url=settings.root_url,
        version=version_info(),
        max_body_bytes=settings.max_body_bytes,
        expire_interval_ms=settings.expire_interval_ms,
        access_log_enabled=settings.access_log,
        on_shutdown=storage.close,
    )


def worker_app() -> PurgeCacheApp:
    """granian's factory, called in each worker process with the settings the parent checked."""
    settings = Settings.from_json(os.environ[SETTINGS_ENV])
    configure_logging()
    return build_app(settings, load_clients(Path(settings.clients_file)))


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
    from granian.constants import Interfaces
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
    server = Server(
        "purgecache.server:worker_app",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        factory=True,
        log_enabled=False,
        workers_kill_timeout=8,
    )
    log.info(
        "purgecache serving %s/api/purge-cache/v1/ on %s:%d (database %s, clients %s, "
        "%d client(s))",
        settings.root_url,
        settings.host,
        settings.port,
        settings.db_url,
        settings.clients_file,
        len(clients.clients),
    )
    try:
        server.serve()
    except RuntimeError as error:
        raise StartupError(f"cannot listen on {settings.host}:{settings.port}: {error}") from error

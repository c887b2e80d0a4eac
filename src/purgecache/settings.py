"""The service's configuration: one frozen object, built once by the CLI (flags > environment >
defaults), handed to every worker process as JSON.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from urllib.parse import urlsplit

from purgecache.model import DAY_MS

DEFAULT_RETENTION_MS = 30 * DAY_MS
DEFAULT_CACHE_TIME_MS = 10_000
MAX_BODY_BYTES = 64 * 1024


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


@dataclass(frozen=True)
class Settings:
    """Everything `serve` needs; no secrets live here (only the clients file's path)."""

    host: str = "127.0.0.1"
    port: int = 8080
    root_url: str = ""  # empty: http://<host>:<port>
    db_url: str = ""  # empty: sqlite in the data directory
    clients_file: str = ""  # empty: <data dir>/clients.toml, created with an admin credential
    data_dir: str = ""
    retention_ms: int = DEFAULT_RETENTION_MS
    cache_time_ms: int = DEFAULT_CACHE_TIME_MS
    cache_max_pools: int = 10_000
    expire_interval_ms: int = 3_600_000
    sqlite_synchronous: str = "NORMAL"
    workers: int = 1
    access_log: bool = True
    max_body_bytes: int = MAX_BODY_BYTES
    auth_root_url: str = ""  # set: delegate authentication to that deployment's auth service
    trust_proxy: bool = False
    migrate: bool = True  # apply missing schema migrations at start-up
    interface: str = "rsgi"  # granian's native interface (faster); "asgi" sees the raw path

    def resolved(self) -> Settings:
        """Fill the defaults that depend on other settings."""
        data_dir = Path(self.data_dir) if self.data_dir else default_data_dir()
        host_in_url = f"[{self.host}]" if ":" in self.host else self.host
        auth_root_url = normalize_root_url(self.auth_root_url) if self.auth_root_url else ""
        return replace(
            self,
            auth_root_url=auth_root_url,
            data_dir=str(data_dir),
            root_url=normalize_root_url(self.root_url or f"http://{host_in_url}:{self.port}"),
            db_url=self.db_url or f"sqlite:///{(data_dir / 'purgecache.db').resolve()}",
            clients_file=self.clients_file or str(data_dir / "clients.toml"),
        )

    def to_json(self) -> str:
        """Serialise for a worker process."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Settings:
        """The inverse of `to_json`."""
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

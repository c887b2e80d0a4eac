"""The clients file: static Taskcluster credentials, their scopes and the anonymous scopes.

```toml
anonymous_scopes = []
[[clients]]
client_id = "admin"
access_token = "..."
scopes = ["*"]
```
"""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from purgecache.auth.credentials import ANONYMOUS, Client
from purgecache.auth.scopes import RoleResolver, ScopeSet, is_valid_scope
from purgecache.model import to_ms

ANONYMOUS_ROLE = "anonymous"
_CLIENT_ID_RE = re.compile(r"[A-Za-z0-9!@/:.+|_-]+")


def is_client_id(text: str) -> bool:
    """Whether `text` is a Taskcluster client id."""
    return _CLIENT_ID_RE.fullmatch(text) is not None


def new_access_token() -> str:
    """A random access token, as long as Taskcluster's (44 characters)."""
    return secrets.token_urlsafe(33)


class ClientsFileError(ValueError):
    """The clients file cannot be used; the message says where and why."""


@dataclass(frozen=True)
class ClientStore:
    """Clients by id, with scopes expanded through roles and the anonymous role."""

    clients: Mapping[str, Client]
    anonymous_scopes: ScopeSet
    resolver: RoleResolver

    def client(self, client_id: str) -> Client | None:
        """The client with this id, or None."""
        return self.clients.get(client_id)

    def expand(self, scopes: Iterable[str]) -> ScopeSet:
        """Expand scopes through the roles of this file."""
        return ScopeSet(self.resolver.expand(scopes))


def _scopes(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(is_valid_scope(s) for s in value):
        raise ClientsFileError(f"{where}: scopes must be a list of printable-ASCII strings")
    return [str(s) for s in value]


def _expires(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as error:
            raise ClientsFileError(f"{where}: expires is not an RFC 3339 date-time") from error
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ClientsFileError(f"{where}: expires must be an RFC 3339 date-time with a zone")
    return to_ms(value)


def _client(entry: object, index: int, resolver: RoleResolver) -> Client:
    where = f"clients[{index}]"
    if not isinstance(entry, dict):
        raise ClientsFileError(f"{where} must be a table")
    unknown = set(entry) - {"client_id", "access_token", "scopes", "expires", "disabled"}
    if unknown:
        raise ClientsFileError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    client_id, token = entry.get("client_id"), entry.get("access_token")
    if not isinstance(client_id, str) or not is_client_id(client_id):
        raise ClientsFileError(f"{where}: client_id must be a non-empty Taskcluster client id")
    if not isinstance(token, str) or not token:
        raise ClientsFileError(f"{where} ({client_id}): access_token must be a non-empty string")
    disabled = entry.get("disabled", False)
    if not isinstance(disabled, bool):
        raise ClientsFileError(f"{where} ({client_id}): disabled must be true or false")
    scopes = _scopes(entry.get("scopes", []), f"{where} ({client_id})")
    return Client(
        client_id,
        token,
        ScopeSet(resolver.expand([*scopes, ANONYMOUS])),
        ScopeSet(resolver.expand(scopes)),
        _expires(entry.get("expires"), f"{where} ({client_id})"),
        disabled,
    )


def parse_clients(data: Mapping[str, object]) -> ClientStore:
    """Build the store from the parsed TOML document."""
    unknown = set(data) - {"anonymous_scopes", "clients", "roles"}
    if unknown:
        raise ClientsFileError(f"unknown top-level key(s) {', '.join(sorted(unknown))}")
    roles: dict[str, list[str]] = {}
    raw_roles = data.get("roles", [])
    if not isinstance(raw_roles, list):
        raise ClientsFileError("roles must be an array of tables ([[roles]])")
    for index, role in enumerate(raw_roles):
        if not isinstance(role, dict) or not isinstance(role.get("role_id"), str):
            raise ClientsFileError(f"roles[{index}] needs a string role_id")
        roles[role["role_id"]] = _scopes(role.get("scopes", []), f"roles[{index}]")
    anonymous = _scopes(data.get("anonymous_scopes", []), "anonymous_scopes")
    roles[ANONYMOUS_ROLE] = [*roles.get(ANONYMOUS_ROLE, []), *anonymous]
    resolver = RoleResolver(roles)
    raw_clients = data.get("clients", [])
    if not isinstance(raw_clients, list):
        raise ClientsFileError("clients must be an array of tables ([[clients]])")
    clients: dict[str, Client] = {}
    for index, entry in enumerate(raw_clients):
        client = _client(entry, index, resolver)
        if client.client_id in clients:
            raise ClientsFileError(f"clients[{index}]: duplicate client_id {client.client_id}")
        clients[client.client_id] = client
    return ClientStore(clients, ScopeSet(resolver.expand([ANONYMOUS])), resolver)


def load_clients(path: Path) -> ClientStore:
    """Read and check a clients file."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as error:
        raise ClientsFileError(f"cannot read clients file {path}: {error.strerror}") from error
    except tomllib.TOMLDecodeError as error:
        raise ClientsFileError(f"clients file {path} is not valid TOML: {error}") from error
    try:
        return parse_clients(data)
    except ClientsFileError as error:
        raise ClientsFileError(f"clients file {path}: {error}") from error


FileSignature = tuple[int, int, int]


def file_signature(path: Path) -> FileSignature | None:
    """What tells a replaced or rewritten file apart: inode, mtime (ns) and size; None when it
    cannot be read."""
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_ino, found.st_mtime_ns, found.st_size


def ensure_admin_clients_file(path: Path) -> bool:
    """Create a clients file with one random `admin` credential (mode 0600) unless one exists.

    Returns whether it was created.
    """
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    token = new_access_token()
    text = (
        "# purgecache clients file, created on first start. Keep it secret.\n"
        "# Scopes of requests without credentials; for the seed era's public reads use\n"
        '# anonymous_scopes = ["purge-cache:purge-requests::*", "purge-cache:all-purge-requests"]\n'
        "anonymous_scopes = []\n\n"
        "[[clients]]\n"
        'client_id = "admin"\n'
        f'access_token = "{token}"\n'
        'scopes = ["*"]\n'
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return True

"""Changing the clients file from the command line: read it, change one client, write it back.

The file is rewritten whole from its parsed TOML (same keys, comments not kept), checked by the
same parser `serve` uses before it replaces the old file, then written atomically: a private
(0600) file beside it, flushed, renamed over it, keeping the old file's owner and group where
the writer may (root editing the service user's file). Writers hold an exclusive lock on the
file's directory, so two commands at once do not lose a change.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

from purgecache.agent.files import fsync_directory
from purgecache.auth.clients import (
    ClientsFileError,
    is_client_id,
    load_clients,
    new_access_token,
    parse_clients,
)
from purgecache.auth.scopes import is_valid_scope

HEADER = (
    "# purgecache clients file, written by `purgecache clients` (comments are not kept).\n"
    "# Keep it secret: it holds access tokens.\n"
)
Document = dict[str, Any]


class ClientsEditError(ValueError):
    """The change cannot be made; the message says why, in one line."""


def read_document(path: Path, *, missing_ok: bool = False) -> Document:
    """The file's TOML as it is, after checking that `serve` accepts it."""
    if missing_ok and not path.exists():
        return {"anonymous_scopes": [], "clients": []}
    try:
        load_clients(path)
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except ClientsFileError as error:
        raise ClientsEditError(str(error)) from error


def find_client(document: Document, client_id: str, path: Path) -> dict[str, Any]:
    """The client's table; ClientsEditError naming the file when there is none."""
    for entry in document.get("clients", []):
        if entry.get("client_id") == client_id:
            return entry  # type: ignore[no-any-return]
    raise ClientsEditError(f"no client {client_id!r} in {path}")


def add_client(
    document: Document, client_id: str, scopes: list[str], expires: str | None, path: Path
) -> str:
    """Add an enabled client with a new random access token; return the token."""
    if not is_client_id(client_id):
        raise ClientsEditError(
            f"{client_id!r} is not a Taskcluster client id (A-Z a-z 0-9 and !@/:.+|_-)"
        )
    if any(entry.get("client_id") == client_id for entry in document.get("clients", [])):
        raise ClientsEditError(f"client {client_id!r} exists in {path}: rotate or remove it")
    invalid = [scope for scope in scopes if not is_valid_scope(scope)]
    if invalid:
        raise ClientsEditError(f"{invalid[0]!r} is not a scope (printable ASCII)")
    token = new_access_token()
    entry: dict[str, Any] = {"client_id": client_id, "access_token": token, "scopes": scopes}
    if expires is not None:
        entry["expires"] = expires
    document.setdefault("clients", []).append(entry)
    return token


def render(document: Mapping[str, Any]) -> str:
    """The document as TOML: top-level keys, then each array of tables in order."""
    lines = [HEADER.rstrip("\n")]
    tables = {key: value for key, value in document.items() if _is_table_array(value)}
    lines += [f"{key} = {_value(value)}" for key, value in document.items() if key not in tables]
    for key, entries in tables.items():
        for entry in entries:
            lines += ["", f"[[{key}]]"]
            lines += [f"{name} = {_value(value)}" for name, value in entry.items()]
    return "\n".join(lines) + "\n"


def _is_table_array(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(x, dict) for x in value)


def _value(value: object) -> str:
    """A TOML value of the kinds a clients file holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        # JSON's escapes are TOML's too; DEL must be escaped in TOML, not in JSON.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, datetime | int | float):
        return value.isoformat() if isinstance(value, datetime) else repr(value)
    raise ClientsEditError(f"cannot write a value of type {type(value).__name__}")


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` by `text` in one rename, mode 0600, keeping the old owner if possible."""
    try:
        parse_clients(tomllib.loads(text))  # never write what `serve` would refuse
    except (tomllib.TOMLDecodeError, ClientsFileError) as error:
        raise ClientsEditError(f"the changed file would be invalid: {error}") from error
    owner = _owner(path)  # only root may give the file back to another user; others keep it
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if owner is not None:
            with suppress(PermissionError):
                os.chown(name, *owner)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def _owner(path: Path) -> tuple[int, int] | None:
    try:
        found = path.stat()
    except FileNotFoundError:
        return None
    return found.st_uid, found.st_gid


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the exclusive lock of the file's directory (created if missing) while editing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)

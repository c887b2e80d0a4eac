"""`purgecache clients ...`: the credentials of this host's clients file, from the command line.

Every command names the file as `serve` does (`--clients`, `--data-dir`, their variables); a
running `serve` picks a change up within about two seconds, without a restart. Access tokens
are printed once, by `add` and `rotate`, and never shown again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from purgecache.auth.clients import new_access_token
from purgecache.auth.clients_edit import (
    ClientsEditError,
    Document,
    add_client,
    find_client,
    locked,
    read_document,
    render,
    write_atomically,
)
from purgecache.settings import Settings

FileOptions = Callable[[click.Command], click.Command]

EPILOG = """\b
Running servers pick changes up within about two seconds (no restart).
Exit status: 0 done; 1 the change cannot be made (unknown or existing client,
invalid file); 2 bad usage.
"""


@click.group(epilog=EPILOG)
def clients() -> None:
    """Manage the credentials of this host's clients file."""


def clients_path(clients_file: str, data_dir: str) -> Path:
    """The clients file `serve` would read with these options."""
    return Path(Settings(clients_file=clients_file, data_dir=data_dir).resolved().clients_file)


def _change(
    clients_file: str, data_dir: str, change: Callable[[Document, Path], str], *, create: bool
) -> str:
    """Apply `change` to the file under its lock and write the result; its answer."""
    path = clients_path(clients_file, data_dir)
    try:
        with locked(path):
            document = read_document(path, missing_ok=create)
            answer = change(document, path)
            write_atomically(path, render(document))
    except ClientsEditError as error:
        raise click.ClickException(str(error).replace("\n", " ")) from None
    except OSError as error:
        raise click.ClickException(f"cannot write {path}: {error.strerror}") from None
    return answer


def _read(clients_file: str, data_dir: str) -> tuple[Document, Path]:
    path = clients_path(clients_file, data_dir)
    try:
        return read_document(path), path
    except ClientsEditError as error:
        raise click.ClickException(str(error).replace("\n", " ")) from None


def _print_credentials(client_id: str, token: str, path: Path, what: str) -> None:
    """The credentials on stdout (in the form the Taskcluster clients read), the rest on
    stderr."""
    click.echo(
        f"{what} client {client_id} in {path}; its access token is shown only now.", err=True
    )
    click.echo(f"TASKCLUSTER_CLIENT_ID={client_id}")
    click.echo(f"TASKCLUSTER_ACCESS_TOKEN={token}")


@clients.command()
@click.argument("client_id")
@click.option("--scope", "scopes", multiple=True, help="A scope of the client (repeatable).")
@click.option("--expires", help="When the credentials stop working (RFC 3339 date-time).")
def add(
    client_id: str, scopes: tuple[str, ...], expires: str | None, clients_file: str, data_dir: str
) -> None:
    """Add a client with a new random access token, printed once.

    \b
    Example:
      purgecache clients add ci-workers --scope 'purge-cache:purge-requests::*'
    """
    token = _change(
        clients_file,
        data_dir,
        lambda document, path: add_client(document, client_id, list(scopes), expires, path),
        create=True,
    )
    _print_credentials(client_id, token, clients_path(clients_file, data_dir), "added")


@clients.command("list")
def list_clients(clients_file: str, data_dir: str) -> None:
    """List the clients: id, state, expiry and scopes (never tokens)."""
    document, _ = _read(clients_file, data_dir)
    for entry in document.get("clients", []):
        scopes = " ".join(entry.get("scopes", [])) or "-"
        click.echo(f"{entry['client_id']}\t{_state(entry)}\t{_expiry(entry)}\t{scopes}")


@clients.command()
@click.argument("client_id")
def show(client_id: str, clients_file: str, data_dir: str) -> None:
    """Show one client (never its token)."""
    document, path = _read(clients_file, data_dir)
    entry = _found(document, client_id, path)
    click.echo(f"client_id: {client_id}")
    click.echo(f"state: {_state(entry)}")
    click.echo(f"expires: {_expiry(entry)}")
    click.echo("scopes:" + "".join(f"\n  {scope}" for scope in entry.get("scopes", [])))


@clients.command()
@click.argument("client_id")
def rotate(client_id: str, clients_file: str, data_dir: str) -> None:
    """Give a client a new random access token, printed once; the old one stops working."""

    def change(document: Document, path: Path) -> str:
        token = new_access_token()
        find_client(document, client_id, path)["access_token"] = token
        return token

    token = _change(clients_file, data_dir, change, create=False)
    _print_credentials(client_id, token, clients_path(clients_file, data_dir), "rotated")


@clients.command()
@click.argument("client_id")
def disable(client_id: str, clients_file: str, data_dir: str) -> None:
    """Refuse a client's requests (`disabled = true`), keeping its entry."""
    _set(client_id, clients_file, data_dir, disabled=True)
    click.echo(f"disabled client {client_id}")


@clients.command()
@click.argument("client_id")
def enable(client_id: str, clients_file: str, data_dir: str) -> None:
    """Accept a disabled client's requests again."""
    _set(client_id, clients_file, data_dir, disabled=False)
    click.echo(f"enabled client {client_id}")


@clients.command()
@click.argument("client_id")
def remove(client_id: str, clients_file: str, data_dir: str) -> None:
    """Delete a client from the file."""

    def change(document: Document, path: Path) -> str:
        document["clients"].remove(find_client(document, client_id, path))
        return ""

    _change(clients_file, data_dir, change, create=False)
    click.echo(f"removed client {client_id}")


def _set(client_id: str, clients_file: str, data_dir: str, *, disabled: bool) -> None:
    def change(document: Document, path: Path) -> str:
        entry = find_client(document, client_id, path)
        if disabled:
            entry["disabled"] = True
        else:
            entry.pop("disabled", None)
        return ""

    _change(clients_file, data_dir, change, create=False)


def _found(document: Document, client_id: str, path: Path) -> dict[str, Any]:
    try:
        return find_client(document, client_id, path)
    except ClientsEditError as error:
        raise click.ClickException(str(error)) from None


def _state(entry: dict[str, Any]) -> str:
    if entry.get("disabled"):
        return "disabled"
    expires = entry.get("expires")
    if isinstance(expires, str):
        expires = datetime.fromisoformat(expires.replace("Z", "+00:00"))
    if isinstance(expires, datetime) and expires <= datetime.now(expires.tzinfo):
        return "expired"
    return "enabled"


def _expiry(entry: dict[str, Any]) -> str:
    expires = entry.get("expires")
    if expires is None:
        return "never"
    return expires.isoformat() if isinstance(expires, datetime) else str(expires)


def register(group: click.Group, file_options: FileOptions) -> None:
    """Add `clients` to the main group, each command taking the clients file's options."""
    for command in clients.commands.values():
        file_options(command)
    group.add_command(clients)

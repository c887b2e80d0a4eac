"""Numbered migrations per backend (`sqlite/`, `postgres/`), shipped as package data.

A migration is `NNNN_name.sql` (statements the backend runs in order) or `NNNN_name.py`, a
module whose `migrate(conn)` rewrites data with the same Python code that writes new rows (a
SQLite `sqlite3.Connection` inside the upgrade's transaction; a PostgreSQL
`psycopg.AsyncConnection` in autocommit mode, committing its own batches).
"""

from __future__ import annotations

import importlib
import re
from importlib import resources
from typing import Any, NamedTuple


class Migration(NamedTuple):
    """One numbered step: SQL statements, or the module of a Python step."""

    number: int
    sql: str  # empty for a Python step
    module: str | None = None


def migrations(backend: str) -> list[Migration]:
    """Every migration of a backend, in order."""
    package = f"{__name__}.{backend}"
    found: dict[int, Migration] = {}
    for entry in (resources.files(__name__) / backend).iterdir():
        number, _, rest = entry.name.partition("_")
        if not number.isdigit() or not rest:
            continue
        if entry.name.endswith(".sql"):
            migration = Migration(int(number), entry.read_text("utf-8"))
        elif entry.name.endswith(".py"):
            migration = Migration(int(number), "", f"{package}.{entry.name.removesuffix('.py')}")
        else:
            continue
        if migration.number in found:
            raise ValueError(f"two {backend} migrations numbered {migration.number}")
        found[migration.number] = migration
    return sorted(found.values())


def python_step(migration: Migration) -> Any:
    """The `migrate` function of a Python migration."""
    assert migration.module is not None
    return importlib.import_module(migration.module).migrate


def statements(sql: str) -> list[str]:
    """The statements of a migration file (split at `;`, comments-only pieces dropped), a
    `$$`-quoted function body and a trigger's `BEGIN ... END` kept whole."""
    whole: list[str] = []
    current: str | None = None
    for piece in sql.split(";"):
        current = piece if current is None else f"{current};{piece}"
        if current.count("$$") % 2 == 0 and not _open_trigger(current):
            whole.append(current)
            current = None
    if current is not None:
        whole.append(current)
    pieces = (piece.strip() for piece in whole)
    return [p for p in pieces if p and not all(x.startswith("--") for x in p.splitlines())]


_TRIGGER_BODY = re.compile(r"\bCREATE\s+TRIGGER\b.*\bBEGIN\b", re.IGNORECASE | re.DOTALL)
_END = re.compile(r"\bEND\s*$", re.IGNORECASE)


def _open_trigger(text: str) -> bool:
    """A SQLite trigger whose `BEGIN` has not met its `END` yet."""
    return bool(_TRIGGER_BODY.search(text)) and not _END.search(text.strip())

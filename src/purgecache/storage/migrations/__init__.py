"""Numbered SQL migrations per backend (`sqlite/`, `postgres/`), shipped as package data."""

from __future__ import annotations

from importlib import resources


def migrations(backend: str) -> list[tuple[int, str]]:
    """(number, SQL) of every migration of a backend, in order."""
    folder = resources.files(__name__) / backend
    found = [
        (int(entry.name.split("_", 1)[0]), entry.read_text("utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found)


def statements(sql: str) -> list[str]:
    """The statements of a migration file (split at `;`, comments-only pieces dropped)."""
    pieces = (piece.strip() for piece in sql.split(";"))
    return [p for p in pieces if p and not all(x.startswith("--") for x in p.splitlines())]

"""Fixtures of the storage tests: each backend, freshly migrated, on one event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from purgecache.storage import SqliteStorage, Storage
from purgecache.storage.postgres import PostgresStorage

import pg

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    """One event loop for the whole test (connection pools belong to a loop)."""
    with asyncio.Runner() as loop:
        yield loop


def new_storage(backend: str, path: Path) -> Storage:
    """An empty database of a backend (not yet migrated)."""
    if backend == "sqlite":
        return SqliteStorage(path)
    return PostgresStorage(pg.create_database())


@pytest.fixture(params=BACKENDS)
def storage(
    request: pytest.FixtureRequest, tmp_path: Path, runner: asyncio.Runner
) -> Iterator[Storage]:
    """A freshly migrated, empty storage of each backend."""
    backend = new_storage(request.param, tmp_path / "contract.db")
    runner.run(backend.upgrade())
    yield backend
    runner.run(backend.close())

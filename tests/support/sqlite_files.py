"""Opening a database file from a test as another process would."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def sqlite_file(path: Path | str, **options: Any) -> Iterator[sqlite3.Connection]:
    """A connection for one block: committed at its end (rolled back on an exception), as
    `with sqlite3.connect(...)` does, and then closed, which that does not do (Python 3.13
    warns of every connection left to the garbage collector)."""
    conn = sqlite3.connect(path, **options)
    try:
        with conn:
            yield conn
    finally:
        conn.close()

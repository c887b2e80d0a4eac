"""Another process holding an SQLite file's lock for a while, and proof that the event loop
kept turning meanwhile (for the tests of what waits where)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def held(path: Path, *statements: str) -> Iterator[threading.Event]:
    """A connection on its own thread runs `statements` (which take the lock), then holds it
    until the event yielded is set (5 s at most) and commits. Set it to let go."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        other = sqlite3.connect(path, isolation_level=None)
        for statement in statements:
            other.execute(statement)
        locked.set()
        release.wait(5)
        other.execute("COMMIT")
        other.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(5)
        yield release
    finally:
        release.set()
        holder.join()


async def ticks_until(event: threading.Event) -> int:
    """How many times a task got to run every 10 ms until `event` was set: near 30 over
    0.3 s while the event loop turns (fewer on a loaded machine), 1 or 2 when something
    blocks it."""
    ticks = 0
    while not event.is_set():
        ticks += 1
        await asyncio.sleep(0.01)
    return ticks

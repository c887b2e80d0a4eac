"""A total time limit on reaching the service, for a pre-task hook that must not wait long.

Each attempt of a fetch is bounded by `--timeout`, but only phase by phase (connecting,
each read), and the retries add up: a hung service held `sync --timeout 2s` for 9.9 s. A
deadline bounds the whole fetch, attempts and waits between them included, with the process's
real-time interval timer: when it fires, the blocked call is interrupted and `DeadlinePassed`
raised in its place. Only the fetch runs under it, never the registry's file work, so a
deadline can cut a network wait short but never a change on disk.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType

from purgecache.agent.errors import ServiceUnreachable


class DeadlinePassed(ServiceUnreachable):
    """No answer from the service within the deadline: nothing was deleted or recorded."""


@contextlib.contextmanager
def within(seconds: float | None, what: str) -> Iterator[None]:
    """Raise `DeadlinePassed` (naming `what`) in the block if it takes more than `seconds`
    (no limit when None). Only in the main thread, where signals are handled."""
    if seconds is None:
        yield
        return
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("a deadline works only in the main thread")
    armed = True

    def expire(signum: int, frame: FrameType | None) -> None:
        if armed:
            raise DeadlinePassed(f"{what}: no answer within the deadline ({seconds:g} s)")

    previous = signal.signal(signal.SIGALRM, expire)
    started = time.monotonic()
    outer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:  # someone else's timer: give back what is left of it
            left = outer - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))

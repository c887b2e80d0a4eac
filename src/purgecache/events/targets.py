"""This process's event targets, registered in the database before it writes anything that
makes an event.

A write stores its events only for the targets registered when it commits (the outbox fans
each event out to them), so a purge accepted before this process registered its targets would
go without their events. Start-up waits a little for the registration; should the database be
away or slow then, the service starts anyway (its heartbeat, metrics and cached answers work
without the database), and every write first waits for the registration, which is attempted
again, or is refused with the database's error (503), never accepted without its events.

Registration only adds: a target registered by another replica, or by an earlier
configuration, keeps receiving events until `purgecache events targets --remove` removes it
(a warning names such targets at start-up)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from purgecache.logs import log_event
from purgecache.storage import Storage, StorageError

log = logging.getLogger("purgecache")


class TargetRegistration:
    """Registers `targets` once; `ensure` before each write that makes events."""

    def __init__(self, storage: Storage, targets: Sequence[str]) -> None:
        self.storage = storage
        self.targets = tuple(targets)
        self.done = not self.targets  # nothing to register, nothing to wait for
        self._attempt: asyncio.Future[None] | None = None

    async def ensure(self) -> None:
        """Return once the targets are registered (at once after the first success); the
        StorageError of the attempt otherwise. Callers share one attempt at a time, and one
        that stops waiting (a time-out) does not stop it."""
        if self.done:
            return
        if self._attempt is None or self._attempt.done():
            self._attempt = asyncio.ensure_future(self._register())
            self._attempt.add_done_callback(_retrieved)
        await asyncio.shield(self._attempt)

    async def _register(self) -> None:
        await self.storage.add_event_targets(self.targets)
        self.done = True
        with contextlib.suppress(StorageError):  # only a warning is lost
            others = sorted(set(await self.storage.event_targets()) - set(self.targets))
            if others:
                log_event(log, logging.WARNING, "event-targets-not-ours", targets=others)


def _retrieved(attempt: asyncio.Future[None]) -> None:
    """An attempt's failure is its waiters' to report, even when none waited to the end."""
    if not attempt.cancelled():
        attempt.exception()

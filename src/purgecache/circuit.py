"""Fail fast while a dependency is down: a circuit breaker with one background probe.

A circuit is closed while its dependency works. The first outage failure a caller reports
(`trip`) opens it: from then on `check` refuses at once (no call to the dependency, no wait),
and one background task probes the dependency, at once and then every `interval` seconds,
until a probe succeeds; that closes the circuit. There is never more than one probe at a time,
and recovery needs no restart. The opening and the closing are one log line each; the calls
refused meanwhile are not logged one by one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from purgecache.logs import log_event

log = logging.getLogger("purgecache")

PROBE_INTERVAL_S = 1.0


class CircuitOpen(Exception):
    """Refused without trying: the dependency failed recently and is not back yet."""


class Circuit:
    """One dependency's circuit: `check` before a call, `trip` on an outage failure."""

    def __init__(
        self,
        dependency: str,
        probe: Callable[[], Awaitable[object]],
        refusal: Callable[[], CircuitOpen],
        *,
        interval: float = PROBE_INTERVAL_S,
    ) -> None:
        self.dependency = dependency
        self.probe = probe
        self.refusal = refusal  # the exception `check` raises while open
        self.interval = interval
        self.is_open = False
        self._prober: asyncio.Task[None] | None = None

    def check(self) -> None:
        """Raise the refusal while the circuit is open (no I/O either way)."""
        if self.is_open:
            raise self.refusal()

    def trip(self, error: Exception) -> None:
        """An outage failure: open the circuit (if it is not) and start the probe."""
        if self.is_open:
            return
        self.is_open = True
        log_event(
            log, logging.WARNING, "circuit-opened", dependency=self.dependency, error=str(error)
        )
        self._prober = asyncio.get_running_loop().create_task(self._probe_until_back())

    async def _probe_until_back(self) -> None:
        while True:
            try:
                await self.probe()
            except Exception:
                await asyncio.sleep(self.interval)
                continue
            self.is_open = False
            log_event(log, logging.INFO, "circuit-closed", dependency=self.dependency)
            return

    async def close(self) -> None:
        """Stop probing (at shut-down)."""
        if self._prober is not None:
            self._prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prober
            self._prober = None

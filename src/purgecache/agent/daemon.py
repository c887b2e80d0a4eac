"""`agent run`: sync now, then again every interval (jittered, so a fleet started together
does not ask together), and sooner with exponential back-off while the service is unreachable.
A stop request (SIGTERM) is honoured between syncs and between removals, never in the middle
of a registry change.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from purgecache.agent.errors import ImplausibleAnswer, ServiceRefused, ServiceUnreachable
from purgecache.agent.settings import DEFAULT_INTERVAL_MS
from purgecache.agent.sync import SyncReport

log = logging.getLogger(__name__)

JITTER = 0.2  # each wait is the nominal one ±20 %
FIRST_RETRY_S = 2.0  # after a failed sync; doubling up to the interval


@dataclass(frozen=True, slots=True)
class Pacing:
    """How long the daemon waits between syncs."""

    interval_s: float = DEFAULT_INTERVAL_MS / 1000
    first_retry_s: float = FIRST_RETRY_S
    jitter: float = JITTER

    def after_success(self, rand: Callable[[], float] = random.random) -> float:
        """The wait before the next regular sync."""
        return self._jittered(self.interval_s, rand)

    def after_failure(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        """The wait after `failures` failed syncs in a row (1 for the first)."""
        nominal = min(self.first_retry_s * 2.0 ** (failures - 1), self.interval_s)
        return self._jittered(nominal, rand)

    def _jittered(self, seconds: float, rand: Callable[[], float]) -> float:
        return seconds * (1 + self.jitter * (rand() * 2 - 1))


def run_daemon(
    sync: Callable[[], SyncReport],
    stop: threading.Event,
    pacing: Pacing = Pacing(),
    rand: Callable[[], float] = random.random,
) -> None:
    """Call `sync` until `stop` is set; failures are logged and retried, never raised."""
    failures = 0
    while not stop.is_set():
        try:
            report = sync()
        except ServiceUnreachable as error:
            failures += 1
            wait = pacing.after_failure(failures, rand)
            what = (
                "answer refused" if isinstance(error, ImplausibleAnswer) else "service unreachable"
            )
            log.warning("%s, caches kept, retrying in %.1f s: %s", what, wait, error)
        except ServiceRefused as error:
            failures += 1
            wait = pacing.after_success(rand)
            log.warning("service refused, caches kept, retrying in %.1f s: %s", wait, error)
        except OSError as error:  # the cache root: full disk, permissions ...
            failures += 1
            wait = pacing.after_failure(failures, rand)
            log.warning("cache registry error, retrying in %.1f s: %s", wait, error)
        else:
            failures = 0
            wait = pacing.after_success(rand)
            log.info("%s", report.summary())
            for problem in report.problems:
                log.warning("%s", problem)
        stop.wait(wait)

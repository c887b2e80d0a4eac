"""The service's clock, as seen from the worker.

A purge request's `before` is the service's time; a cache instance's creation time is taken on
the worker. To compare them the agent measures the service's clock from the `Date` header of
each `purgeRequests` answer and keeps that measurement as an *anchor*: the service's time at
one reading of this boot's monotonic clock (`CLOCK_BOOTTIME`, which counts suspend and is never
stepped). The service's time later is the anchor plus the monotonic time elapsed, so a wrong or
stepped worker wall clock does not matter. Every estimate carries its error: half the `Date`
header's one-second resolution plus the round trip, growing by 100 ppm of the elapsed time for
drift. Without an anchor from this boot the worker's wall clock is used with a large error (the
configured clock skew). Comparisons then err on the side of deleting: a cache that may have
been created before `before` is purged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from purgecache.agent.files import boot_id
from purgecache.model import to_ms

DRIFT_DIVISOR = 10_000  # 100 ppm: far more than an undisciplined quartz clock drifts
_BOOTTIME = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)


class WorkerClock(Protocol):
    """The clocks of the worker machine (tests pass a fake)."""

    def wall_ms(self) -> int:
        """Wall-clock time, ms since the epoch (may be wrong, may jump)."""

    def elapsed_ns(self) -> int:
        """A monotonic clock that counts suspend and is never stepped, ns."""

    def boot_id(self) -> str:
        """Which boot `elapsed_ns` belongs to ("" if unknown)."""


class SystemClock:
    """The real clocks."""

    def wall_ms(self) -> int:
        """`time.time()` in ms."""
        return time.time_ns() // 1_000_000

    def elapsed_ns(self) -> int:
        """`CLOCK_BOOTTIME` (Linux), else `CLOCK_MONOTONIC`."""
        return time.clock_gettime_ns(_BOOTTIME)

    def boot_id(self) -> str:
        """The kernel's boot id."""
        return boot_id()


@dataclass(frozen=True, slots=True)
class ServiceTime:
    """An estimate of the service's clock: the true time is within `ms` ± `error_ms`."""

    ms: int
    error_ms: int


@dataclass(frozen=True, slots=True)
class ClockAnchor:
    """The service's time `service_ms` (± `error_ms`) when this boot's monotonic clock read
    `elapsed_ns`."""

    boot_id: str
    elapsed_ns: int
    service_ms: int
    error_ms: int

    def to_json(self) -> dict[str, Any]:
        """As stored in the agent's state file."""
        return {
            "boot_id": self.boot_id,
            "elapsed_ns": self.elapsed_ns,
            "service_ms": self.service_ms,
            "error_ms": self.error_ms,
        }

    @classmethod
    def from_json(cls, data: object) -> ClockAnchor | None:
        """Read a stored anchor; None if it is absent or malformed."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                str(data["boot_id"]),
                int(data["elapsed_ns"]),
                int(data["service_ms"]),
                int(data["error_ms"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


def parse_http_date(text: str | None) -> int | None:
    """An HTTP `Date` header in ms since the epoch, None if absent or unreadable."""
    if not text:
        return None
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return None if moment.tzinfo is None else to_ms(moment)


def measure(date_ms: int, sent_ns: int, received_ns: int, boot: str) -> ClockAnchor:
    """The anchor from an answer stamped `date_ms` (whole seconds) between `sent_ns` and
    `received_ns` of the monotonic clock."""
    round_trip_ms = max(received_ns - sent_ns, 0) // 1_000_000
    # The service's clock at `received` is within [date, date + 1 s + round trip].
    spread_ms = 1000 + round_trip_ms
    return ClockAnchor(boot, received_ns, date_ms + spread_ms // 2, spread_ms // 2 + 1)


def anchored(anchor: ClockAnchor | None, boot: str, elapsed_ns: int) -> ServiceTime | None:
    """The service's time when this boot's monotonic clock read `elapsed_ns`, as the anchor
    tells it; None without an anchor of this boot (or if the clock went backwards)."""
    if anchor is None or not boot or anchor.boot_id != boot:
        return None
    elapsed_ms = (elapsed_ns - anchor.elapsed_ns) // 1_000_000
    if elapsed_ms < 0:  # not the same clock after all
        return None
    return ServiceTime(
        anchor.service_ms + elapsed_ms, anchor.error_ms + elapsed_ms // DRIFT_DIVISOR
    )


def service_now(
    anchor: ClockAnchor | None, clock: WorkerClock, unknown_error_ms: int
) -> ServiceTime:
    """The service's time now: from the anchor if it belongs to this boot, else the worker's
    wall clock give or take `unknown_error_ms`."""
    estimate = anchored(anchor, clock.boot_id(), clock.elapsed_ns())
    return estimate or ServiceTime(clock.wall_ms(), unknown_error_ms)


def reconciled(measured: ClockAnchor, reference: ServiceTime) -> ClockAnchor:
    """The anchor to keep after a measurement, given what was expected at that moment: the
    measurement where the two agree within their errors; where they do not (a clock was
    stepped, or a Date lied by less than the skew), an anchor wide enough for both, so that
    no creation time is later than either says."""
    if abs(measured.service_ms - reference.ms) <= measured.error_ms + reference.error_ms:
        return measured
    low = min(measured.service_ms - measured.error_ms, reference.ms - reference.error_ms)
    high = max(measured.service_ms + measured.error_ms, reference.ms + reference.error_ms)
    middle, half = (low + high) // 2, (high - low + 1) // 2
    return ClockAnchor(measured.boot_id, measured.elapsed_ns, middle, half)

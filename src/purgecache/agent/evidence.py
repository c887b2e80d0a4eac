"""What one `purgeRequests` answer may be trusted with.

The watermark and the clock anchor come from the answer's `Date`; a proxy or a broken service
clock can make it say anything. A `Date` too late would move the watermark past purges the
worker never saw and make new instances look younger than later purges; one too early would
make them look older than earlier purges. So the `Date` is checked against what the worker
already knows: its last measurement of the service's clock (carried forward by the monotonic
clock) and its own wall clock. It must agree with one of them within the clock skew, and no
`before` in the answer may lie beyond the service's clock by more than the skew. An answer
that fails is refused: nothing is recorded or deleted, and the next sync asks again.

What passes is still used with care: the watermark is never later than the worker's own
estimate of the service's clock, and an anchor that disagrees with the expected time is
widened to cover both (see `clock.reconciled`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from purgecache.agent.clock import ClockAnchor, ServiceTime, WorkerClock, anchored, reconciled
from purgecache.agent.errors import ImplausibleAnswer
from purgecache.model import format_time

if TYPE_CHECKING:
    from purgecache.agent.fetch import Fetched


@dataclass(frozen=True, slots=True)
class Trusted:
    """What a sync takes from an answer: the pool's new watermark (None: keep the old one)
    and the anchor to keep."""

    watermark: int | None
    anchor: ClockAnchor | None
    now_ms: int  # the service's time the `before` values were checked against


def weigh(
    fetched: Fetched, previous: ClockAnchor | None, clock: WorkerClock, skew_ms: int
) -> Trusted:
    """Check the answer against the worker's clocks (`previous`: the stored anchor);
    `ImplausibleAnswer` if it cannot be trusted."""
    wall = ServiceTime(clock.wall_ms(), 0)
    measured = anchored(previous, clock.boot_id(), clock.elapsed_ns())
    expected = [wall] if measured is None else [measured, wall]
    date = fetched.service_date
    if date is not None:
        _check_date(date, expected, skew_ms)
    latest = max((e.ms + e.error_ms for e in expected), default=wall.ms)
    now = latest if date is None else date
    check_befores(fetched.requests, now, skew_ms)
    newest = date if date is not None else max((b for _, b in fetched.requests), default=None)
    watermark = None if newest is None else min(newest, latest)
    anchor = fetched.anchor and reconciled(fetched.anchor, measured or wall)
    return Trusted(watermark, anchor, now)


def _check_date(date: int, expected: list[ServiceTime], skew_ms: int) -> None:
    if any(abs(date - e.ms) <= e.error_ms + skew_ms for e in expected):
        return
    what = "this worker's clock" if len(expected) == 1 else "this worker's clocks"
    raise ImplausibleAnswer(
        f"the answer's Date ({format_time(date)}) is {_gap(date - expected[0].ms)} {what}, "
        f"more than the clock skew ({_duration(skew_ms)}): refused (a proxy rewriting "
        "Date, or a clock to fix; --clock-skew sets the tolerance)"
    )


def check_befores(requests: Iterable[tuple[str, int]], now: int, skew_ms: int) -> None:
    """`ImplausibleAnswer` when a request's `before` lies beyond the service's time `now` by
    more than the skew (a purge request, or one made from an applied selector)."""
    for cache_name, before in requests:
        if before > now + skew_ms:
            raise ImplausibleAnswer(
                f"the purge request of {cache_name[:80]!r} has before {format_time(before)}, "
                f"{_gap(before - now)} the service's clock ({format_time(now)}), more than the "
                f"clock skew ({_duration(skew_ms)}): refused"
            )


def _gap(ms: int) -> str:
    return f"{_duration(abs(ms))} {'after' if ms > 0 else 'before'}"


def _duration(ms: int) -> str:
    """`2h00m05s`, `5m00s`, `1.5s`."""
    hours, rest = divmod(ms // 1000, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02}m{seconds:02}s"
    return f"{minutes}m{seconds:02}s" if minutes else f"{ms / 1000:.1f}s"

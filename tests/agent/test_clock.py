"""The service's clock as the worker estimates it."""

from __future__ import annotations

from agent.fakes import FakeClock
from purgecache.agent.clock import (
    ClockAnchor,
    ServiceTime,
    measure,
    parse_http_date,
    reconciled,
    service_now,
)


def test_http_dates_parse_to_milliseconds() -> None:
    """RFC 7231 dates are read; absent or broken ones are None."""
    assert parse_http_date("Sat, 28 Nov 2026 01:33:23 GMT") == 1795829603000
    for text in (None, "", "yesterday", "Sat, 28 Nov 2026 01:33:23"):
        assert parse_http_date(text) is None


def test_measure_centres_the_estimate_in_the_date_second_and_round_trip() -> None:
    """A Date of whole seconds and a 100 ms round trip: the middle of 1.1 s, ± 551 ms."""
    anchor = measure(1_000_000, sent_ns=0, received_ns=100_000_000, boot="b")
    assert (anchor.service_ms, anchor.error_ms, anchor.elapsed_ns) == (1_000_550, 551, 100_000_000)


def test_service_time_follows_the_monotonic_clock_not_the_wall_clock() -> None:
    """After an anchor, a jump of the wall clock does not move the estimate."""
    clock = FakeClock()
    anchor = ClockAnchor(clock.boot, clock.elapsed, 42_000_000, 500)
    clock.advance(60_000)
    clock.wall -= 3_600_000  # someone sets the worker's clock back an hour
    now = service_now(anchor, clock, unknown_error_ms=300_000)
    assert now.ms == 42_060_000
    assert now.error_ms == 500 + 6  # 100 ppm of a minute


def test_without_a_usable_anchor_the_wall_clock_counts_with_the_large_error() -> None:
    """No anchor, an anchor of another boot, or a clock gone backwards: wall clock ± skew."""
    clock = FakeClock()
    other_boot = ClockAnchor("boot-0", clock.elapsed, 1, 1)
    future = ClockAnchor(clock.boot, clock.elapsed + 10**12, 1, 1)
    for anchor in (None, other_boot, future):
        now = service_now(anchor, clock, unknown_error_ms=300_000)
        assert (now.ms, now.error_ms) == (clock.wall, 300_000)


def test_anchor_round_trips_through_json_and_rejects_garbage() -> None:
    """What the state file stores reads back; malformed data reads as no anchor."""
    anchor = ClockAnchor("b", 1, 2, 3)
    assert ClockAnchor.from_json(anchor.to_json()) == anchor
    assert ClockAnchor.from_json({"boot_id": "b"}) is None
    assert ClockAnchor.from_json("x") is None


def test_reconciled_keeps_an_agreeing_measurement_and_widens_a_disagreeing_one() -> None:
    """A measurement within the errors of what was expected is kept as it is; one outside
    them becomes an anchor whose range covers both, so neither estimate is contradicted."""
    measured = ClockAnchor("b", 7, 1_000_000, 500)
    assert reconciled(measured, ServiceTime(1_000_800, 400)) == measured
    widened = reconciled(measured, ServiceTime(1_240_000, 0))
    assert (widened.boot_id, widened.elapsed_ns) == ("b", 7)
    low, high = widened.service_ms - widened.error_ms, widened.service_ms + widened.error_ms
    assert low <= 999_500 and high >= 1_240_000 and high - low <= 240_502

"""`agent run`'s loop: pacing, back-off while the service is unreachable, stopping."""

from __future__ import annotations

import logging
import threading

import pytest

from purgecache.agent.daemon import Pacing, run_daemon
from purgecache.agent.fetch import ServiceRefused, ServiceUnreachable
from purgecache.agent.sync import SyncReport


class RecordingStop(threading.Event):
    """A stop event that records each wait instead of sleeping, and sets itself after
    `limit` waits."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.waits: list[float] = []
        self.limit = limit

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        if len(self.waits) >= self.limit:
            self.set()
        return self.is_set()


def report() -> SyncReport:
    return SyncReport("p/w", None, 0, (), (), (), None)


@pytest.mark.parametrize("rand", [0.0, 0.5, 0.999])
def test_interval_is_jittered_by_a_fifth(rand: float) -> None:
    """Waits between syncs stay within ±20 % of the interval."""
    wait = Pacing(interval_s=300).after_success(lambda: rand)
    assert 240 <= wait <= 360


def test_failures_back_off_exponentially_up_to_the_interval() -> None:
    """2 s, 4 s, 8 s ... capped at the interval (without jitter: rand 0.5)."""
    pacing = Pacing(interval_s=30)
    waits = [pacing.after_failure(n, lambda: 0.5) for n in range(1, 7)]
    assert waits == [2, 4, 8, 16, 30, 30]


def test_daemon_retries_an_unreachable_service_then_returns_to_the_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Unreachable twice: warned, retried sooner each time; then the regular interval."""
    outcomes: list[Exception | None] = [ServiceUnreachable("down"), ServiceUnreachable("down")]

    def sync() -> SyncReport:
        if outcomes:
            raise outcomes.pop(0)  # type: ignore[misc]
        return report()

    stop = RecordingStop(limit=4)
    with caplog.at_level(logging.WARNING):
        run_daemon(sync, stop, Pacing(interval_s=60), rand=lambda: 0.5)
    assert stop.waits == [2, 4, 60, 60]
    assert caplog.text.count("service unreachable, caches kept") == 2


def test_daemon_keeps_going_when_refused_or_the_disk_fails() -> None:
    """A refusal or an I/O error is logged and retried; the loop never raises."""
    errors: list[Exception] = [ServiceRefused("403"), OSError(28, "No space left on device")]

    def sync() -> SyncReport:
        if errors:
            raise errors.pop(0)
        return report()

    stop = RecordingStop(limit=3)
    run_daemon(sync, stop, Pacing(interval_s=60), rand=lambda: 0.5)
    assert stop.waits == [60, 4, 60]


def test_daemon_does_not_sync_once_stopped() -> None:
    """A stop requested before the first sync means no sync at all."""
    stop = RecordingStop(limit=1)
    stop.set()
    run_daemon(lambda: pytest.fail("synced after stop"), stop)
    assert stop.waits == []

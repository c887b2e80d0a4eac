"""A `purgeRequests` answer whose Date or `before` values lie: refused, or used only as far as
the worker's own clocks vouch for it; never a lost purge, never a purged copy handed out."""

from __future__ import annotations

import pytest

from agent.fakes import FakeClock, FakeService
from purgecache.agent import CacheRegistry, sync_once
from purgecache.agent.errors import ImplausibleAnswer
from purgecache.agent.records import read_cache, read_instance
from purgecache.agent.state import load_state
from purgecache.agent.sync import SyncReport

POOL = "proj-a/linux"
SLACK = 300_000
HOURS_2 = 7_200_000


def sync(registry: CacheRegistry, service: FakeService, slack_ms: int = SLACK) -> SyncReport:
    return sync_once(registry, service, POOL, slack_ms=slack_ms)


def created_ms(registry: CacheRegistry, data: object) -> tuple[int, int]:
    """An instance's recorded creation time and its error."""
    (info,) = [i for i in registry.instances() if i.path / "data" == data]
    assert info.record is not None
    return info.record.created.ms, info.record.created.error_ms


@pytest.mark.parametrize("measured", [True, False], ids=["measured", "first-sync"])
def test_a_date_two_hours_late_for_one_sync_loses_no_purge(
    registry: CacheRegistry, service: FakeService, clock: FakeClock, measured: bool
) -> None:
    """Date +2 h for one sync: refused (nothing recorded, no instance dated in the future);
    a purge issued afterwards is applied by the next sync and the old copy never handed out."""
    if measured:
        sync(registry, service)
    old = registry.mount("checkouts")
    (old / "file").write_text("old")
    registry.release(old)
    state = load_state(registry.layout.state)
    service.date_shift_ms = HOURS_2
    with pytest.raises(
        ImplausibleAnswer, match=r"Date \(.*\) is (1h59m59|2h00m00)s after this worker's"
    ):
        sync(registry, service)
    assert load_state(registry.layout.state) == state
    created, error = created_ms(registry, registry.mount("other"))
    assert created - error <= service.now() < created + 2_000

    service.date_shift_ms = 0
    clock.advance(10_000)
    service.purge("checkouts")
    clock.advance(2_000)
    report = sync(registry, service)
    assert report.requests == 1 and report.deleted == (old.parent,)
    fresh = registry.mount("checkouts")
    assert fresh != old and list(fresh.iterdir()) == []


def test_a_date_two_hours_early_deletes_nothing_made_after_the_purge(
    registry: CacheRegistry, service: FakeService, clock: FakeClock
) -> None:
    """Date −2 h for one sync: refused; an instance made after the purge (while that sync
    was refused) survives the next sync, the one made before goes."""
    sync(registry, service)
    old = registry.mount("checkouts")
    clock.advance(10_000)
    service.purge("checkouts")
    clock.advance(2_000)
    service.date_shift_ms = -HOURS_2
    with pytest.raises(ImplausibleAnswer, match=r"2h00m..s before this worker's clocks"):
        sync(registry, service)
    new = registry.mount("checkouts")  # made after the purge
    for path in (old, new):
        registry.release(path)
    service.date_shift_ms = 0
    report = sync(registry, service)
    assert report.deleted == (old.parent,) and new.exists()
    assert registry.mount("checkouts") == new


def test_a_lie_within_the_skew_never_dates_an_instance_in_the_future(
    registry: CacheRegistry, service: FakeService, clock: FakeClock
) -> None:
    """Date +4 min (within the 5 min skew) is accepted, but the watermark stays at the
    worker's own estimate of the service's clock and the anchor is widened to cover both: an
    instance made then and purged 10 s later is deleted."""
    sync(registry, service)
    clock.advance(60_000)
    service.date_shift_ms = 240_000
    sync(registry, service)
    # no later than the measured clock's upper bound (its error: about a second)
    assert load_state(registry.layout.state).watermarks[POOL] < service.now() + 2_000
    path = registry.mount("checkouts")
    created, error = created_ms(registry, path)
    assert created - error <= service.now()
    registry.release(path)
    service.date_shift_ms = 0
    clock.advance(10_000)
    service.purge("checkouts")
    report = sync(registry, service)
    assert report.deleted == (path.parent,)


@pytest.mark.parametrize("send_date", [True, False], ids=["date", "no-date"])
def test_a_before_beyond_the_service_clock_is_refused_and_nothing_stored(
    registry: CacheRegistry, service: FakeService, clock: FakeClock, send_date: bool
) -> None:
    """A `before` 10 minutes past the service's Date (or, without Date, the worker's clock)
    is refused: nothing stored, caching goes on."""
    sync(registry, service)
    path = registry.mount("checkouts")
    registry.release(path)
    service.send_date = send_date
    service.purges["checkouts"] = service.now() + 600_000
    with pytest.raises(
        ImplausibleAnswer, match=r"'checkouts' has before .*, (9m5.|10m00)s after the service's"
    ):
        sync(registry, service)
    assert read_cache(registry.layout.cache_dir("checkouts")).purged_before is None  # type: ignore[union-attr]
    assert read_instance(path.parent).doomed is False
    assert registry.mount("checkouts") == path


def test_a_worker_clock_off_by_more_than_the_skew_is_refused_until_allowed(
    registry: CacheRegistry, service: FakeService
) -> None:
    """Before any measurement only the wall clock can vouch for the Date: an hour apart is
    refused, saying how far; a clock skew of two hours lets it through."""
    service.offset_ms = 3_600_000
    with pytest.raises(ImplausibleAnswer, match="1h00m00s after this worker's clock, more th"):
        sync(registry, service)
    assert sync(registry, service, slack_ms=HOURS_2).exit_code == 0


def test_a_selector_before_beyond_the_service_clock_is_refused_like_a_request(
    registry: CacheRegistry, service: FakeService
) -> None:
    """An applied selector whose `before` lies 10 minutes past the service's Date is refused
    as a purge request's would be: nothing deleted or doomed, the copy still handed out; one
    within the skew deletes the copy."""
    sync(registry, service)
    path = registry.mount("tmp-build")
    registry.release(path)
    future = [("tmp-*", service.now() + 600_000)]
    with pytest.raises(ImplausibleAnswer, match=r"'tmp-build' has before .*after the service's"):
        sync_once(registry, service, POOL, slack_ms=SLACK, selectors=lambda _: future)
    assert read_instance(path.parent).doomed is False
    assert registry.mount("tmp-build") == path
    registry.release(path)
    now = [("tmp-*", service.now() + 1)]
    report = sync_once(registry, service, POOL, slack_ms=SLACK, selectors=lambda _: now)
    assert report.deleted == (path.parent,)

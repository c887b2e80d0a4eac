"""One sync against a fake service: what is deleted, what survives, the watermark."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from agent.conftest import MakeRegistry, lift_immutable
from agent.fakes import FakeClock, FakeService
from purgecache.agent import CacheRegistry, Released, sync_once
from purgecache.agent.fetch import ServiceRefused, ServiceUnreachable
from purgecache.agent.files import remove_tree
from purgecache.agent.state import load_state
from purgecache.agent.sync import SyncReport

POOL = "proj-a/linux"
SLACK = 300_000


def sync(registry: CacheRegistry, service: FakeService, **options: object) -> SyncReport:
    return sync_once(registry, service, POOL, slack_ms=SLACK, **options)  # type: ignore[arg-type]


def free_instance(registry: CacheRegistry, name: str, content: str = "old") -> Path:
    path = registry.mount(name)
    (path / "file").write_text(content)
    registry.release(path)
    return path


def free_instances(registry: CacheRegistry, name: str, count: int) -> list[Path]:
    """`count` distinct free instances of a cache (mounted together, then released)."""
    paths = [registry.mount(name) for _ in range(count)]
    for path in paths:
        registry.release(path)
    return paths


def watermark(registry: CacheRegistry) -> int | None:
    return load_state(registry.layout.state).watermarks.get(POOL)


def service_date(service: FakeService) -> int:
    """The Date the fake service sends now (whole seconds)."""
    return service.now() - service.now() % 1000


def test_purge_deletes_older_instances_and_spares_other_caches(
    registry: CacheRegistry, service: FakeService, clock: FakeClock
) -> None:
    """Every instance of the purged cache goes; another cache's instance stays."""
    sync(registry, service)
    purged = free_instances(registry, "checkouts", 2)
    kept = free_instance(registry, "sccache")
    clock.advance(10_000)
    service.purge("checkouts")
    report = sync(registry, service)
    assert (report.requests, report.exit_code, report.problems) == (1, 0, ())
    assert sorted(report.deleted) == sorted(p.parent for p in purged)
    assert not any(p.exists() for p in purged) and kept.exists()
    assert registry.trash.leftovers() == []


def test_instances_created_after_before_survive(
    registry: CacheRegistry, service: FakeService, clock: FakeClock
) -> None:
    """An instance made after the purge (by the service's clock) is not deleted."""
    sync(registry, service)  # measures the service's clock
    old = registry.mount("checkouts")  # a task holds it ...
    clock.advance(10_000)
    service.purge("checkouts")
    clock.advance(2_000)
    new = registry.mount("checkouts")  # ... so the next task gets a new instance
    for path in (old, new):
        registry.release(path)
    sync(registry, service)
    assert not old.exists() and new.exists()
    assert registry.mount("checkouts") == new


def test_in_use_instance_is_marked_and_deleted_on_release(
    registry: CacheRegistry, service: FakeService, clock: FakeClock
) -> None:
    """A purge never deletes under a running task: the instance goes when released."""
    sync(registry, service)
    path = registry.mount("checkouts")
    (path / "work").write_text("task writing")
    clock.advance(10_000)
    service.purge("checkouts")
    report = sync(registry, service)
    assert report.doomed == (path.parent,) and report.deleted == ()
    assert (path / "work").read_text() == "task writing"
    assert registry.mount("checkouts") != path  # another task gets a fresh instance
    assert registry.release(path) == (Released.DELETED, ())
    assert not path.parent.exists()


def test_unreachable_service_deletes_nothing_and_keeps_the_watermark(
    registry: CacheRegistry, service: FakeService, clock: FakeClock
) -> None:
    """A failed fetch changes nothing; once the service is back the purge applies."""
    sync(registry, service)
    before_outage = watermark(registry)
    path = free_instance(registry, "checkouts")
    clock.advance(10_000)
    service.purge("checkouts")
    for error in (ServiceUnreachable, ServiceRefused):
        service.down, service.refuse = error is ServiceUnreachable, error is ServiceRefused
        with pytest.raises(error):
            sync(registry, service)
        assert path.exists() and watermark(registry) == before_outage
    service.down = service.refuse = False
    clock.advance(3_600_000)
    sync(registry, service)
    assert not path.exists()


def test_a_removed_cache_root_is_made_again_by_the_next_sync(
    registry: CacheRegistry, service: FakeService, caplog: pytest.LogCaptureFixture
) -> None:
    """`agent run` keeps one registry while someone removes its cache root: the next sync
    makes the root again, saying so, instead of failing every time until a `mount`."""
    remove_tree(registry.layout.root)
    assert sync(registry, service).exit_code == 0
    assert registry.layout.caches.is_dir() and registry.layout.trash.is_dir()
    assert "cache root " in caplog.text and "was missing: created it again" in caplog.text
    assert sync(registry, service).exit_code == 0


def test_watermark_is_the_service_date_and_next_sync_asks_from_it_minus_slack(
    registry: CacheRegistry, service: FakeService, clock: FakeClock
) -> None:
    """The first sync asks everything; the next asks from the answer's Date minus slack.
    Once the service's clock is measured the worker's wall clock no longer matters: set back
    a day, the watermark is still the service's Date."""
    service.offset_ms = -1234
    sync(registry, service)
    first = service_date(service)
    assert watermark(registry) == first
    clock.advance(60_000)
    clock.wall -= 86_400_000
    service.offset_ms += 86_400_000  # the service's clock did not move
    sync(registry, service)
    assert watermark(registry) == service_date(service)
    assert service.calls == [None, first - SLACK]


def test_a_service_clock_set_back_is_followed(
    registry: CacheRegistry, service: FakeService, clock: FakeClock
) -> None:
    """A service whose clock ran 4 minutes fast and is corrected: the next sync asks from the
    corrected time, so a purge made after the correction is not missed."""
    service.offset_ms = 240_000
    sync(registry, service)
    service.offset_ms = 0
    clock.advance(60_000)
    sync(registry, service)  # its answer's Date is 3 minutes before the first one's
    assert watermark(registry) == service_date(service)
    path = free_instance(registry, "checkouts")
    clock.advance(10_000)
    service.purge("checkouts")
    sync(registry, service)
    assert not path.exists()


def test_without_a_date_header_the_latest_before_is_the_watermark(
    registry: CacheRegistry, service: FakeService, clock: FakeClock
) -> None:
    """No Date: the newest `before` received; nothing received: the watermark stays."""
    service.send_date = False
    sync(registry, service)
    assert watermark(registry) is None
    service.purge("a")
    clock.advance(5_000)
    newest = service.purge("b")
    sync(registry, service)
    assert watermark(registry) == newest


def test_no_op_sync_asks_the_service_once(registry: CacheRegistry, service: FakeService) -> None:
    """Nothing to do: one call, nothing deleted, status 0."""
    free_instance(registry, "checkouts")
    report = sync(registry, service)
    assert len(service.calls) == 1 and report.deleted == () and report.exit_code == 0


def test_watermark_survives_restarts_of_the_agent(
    make_registry: MakeRegistry, service: FakeService, clock: FakeClock
) -> None:
    """A new agent on the same root asks from the stored watermark, not from scratch."""
    sync(make_registry(), service)
    stored = watermark(make_registry())
    clock.advance(120_000)
    sync(make_registry(), service)  # a new process: nothing carried over in memory
    assert service.calls == [None, stored - SLACK]  # type: ignore[operator]


def test_failed_removal_does_not_stop_the_rest_and_is_retried(
    make_registry: MakeRegistry, service: FakeService, clock: FakeClock
) -> None:
    """One tree that cannot be removed is reported (status 1); the others are deleted, the
    watermark advances, and the leftover is removed by a later run."""
    stuck: set[str] = set()

    def remove(path: Path) -> None:
        if any(name in path.name for name in stuck):
            raise PermissionError(1, "Operation not permitted", str(path))
        remove_tree(path)

    registry = make_registry(remove=remove)
    sync(registry, service)
    bad = free_instance(registry, "a")
    good = [free_instance(registry, name) for name in ("b", "c")]
    stuck.add(bad.parent.name)
    clock.advance(10_000)
    for name in ("a", "b", "c"):
        service.purge(name)
    report = sync(registry, service)
    assert report.exit_code == 1
    assert [p.action for p in report.problems] == ["remove"]
    assert not any(p.exists() for p in good) and not bad.exists()
    assert watermark(registry) == service_date(service)
    assert registry.mount("a") != bad  # never handed out again
    stuck.clear()
    assert sync(registry, service).exit_code == 0
    assert registry.trash.leftovers() == []


def test_instance_that_cannot_be_moved_aside_is_retried_from_the_local_record(
    registry: CacheRegistry,
    service: FakeService,
    clock: FakeClock,
    immutable: Callable[[Path], None],
) -> None:
    """An instance whose rename fails stays unusable and is deleted by a later sync even
    after the service no longer lists the purge."""
    sync(registry, service)
    bad = free_instance(registry, "a")
    good = free_instance(registry, "b")
    clock.advance(10_000)
    service.purge("a")
    service.purge("b")
    immutable(bad.parent)  # an immutable directory cannot be renamed, even by root
    report = sync(registry, service)
    assert report.exit_code == 1 and [p.action for p in report.problems] == ["move aside"]
    assert not good.exists() and bad.exists()
    assert registry.mount("a") != bad
    service.purges.clear()  # the purge has expired on the service
    lift_immutable(bad.parent)
    clock.advance(600_000)
    report = sync(registry, service)
    assert report.requests == 0 and report.exit_code == 0
    assert not bad.exists()


class Crash(BaseException):
    """The process dies here."""


def test_crash_between_rename_and_removal_leaves_no_half_cache_in_use(
    make_registry: MakeRegistry, service: FakeService, clock: FakeClock
) -> None:
    """A crash halfway through removing a purged instance: the half tree is in the trash,
    no task ever gets it, and the next run removes it and counts it as deleted."""

    def crash_halfway(path: Path) -> None:
        files = sorted(path.rglob("f*"))
        for file in files[: len(files) // 2]:
            file.unlink()
        raise Crash

    crashing = make_registry(remove=crash_halfway)
    sync(crashing, service)
    path = crashing.mount("checkouts")
    for i in range(10):
        (path / f"f{i}").write_text("x")
    crashing.release(path)
    clock.advance(10_000)
    service.purge("checkouts")
    with pytest.raises(Crash):
        sync(crashing, service)

    clock.advance(2_000)
    restarted = make_registry()
    (leftover,) = restarted.trash.leftovers()
    assert 0 < len(list(leftover.rglob("f*"))) < 10  # a half cache ...
    fresh = restarted.mount("checkouts")  # ... that no task gets
    assert fresh != path and list(fresh.iterdir()) == []
    assert all(info.path / "data" != path for info in restarted.instances())
    restarted.release(fresh)
    report = sync(restarted, service)
    assert report.exit_code == 0 and report.deleted == (path.parent,)  # counted once removed
    assert "1 instance(s) deleted" in report.summary()
    assert restarted.trash.leftovers() == [] and fresh.exists()


def test_creation_time_uses_the_measured_service_clock(
    registry: CacheRegistry, service: FakeService, clock: FakeClock
) -> None:
    """The worker's wall clock stepped an hour ahead after a sync measured the service's
    clock: an instance made before a purge (by the service's clock) is still purged, and one
    made after it survives."""
    sync(registry, service)
    clock.wall += 3_600_000
    service.offset_ms = -3_600_000  # the service's clock did not move
    before_purge = registry.mount("checkouts")
    clock.advance(5_000)
    service.purge("checkouts")
    clock.advance(5_000)
    after_purge = registry.mount("checkouts")
    for path in (before_purge, after_purge):
        registry.release(path)
    sync(registry, service)
    assert not before_purge.exists() and after_purge.exists()


def test_before_any_measurement_doubtful_instances_are_purged(
    registry: CacheRegistry, service: FakeService, clock: FakeClock
) -> None:
    """Made before the service's clock was ever measured, an instance within the clock skew
    of a purge counts as older and goes: deleting a good cache costs a rebuild, keeping a
    bad one breaks tasks."""
    path = free_instance(registry, "checkouts")
    clock.advance(60_000)
    service.offset_ms = -120_000  # service clock: the purge is "before" the creation
    service.purge("checkouts")
    sync(registry, service)
    assert not path.exists()

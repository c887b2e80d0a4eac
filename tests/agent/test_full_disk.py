"""A full disk (a 4 MiB tmpfs filled to the last byte): purging and releasing still work, from
the space reserved beforehand or freed by deleting first; what cannot be done is named."""

from __future__ import annotations

import subprocess
from pathlib import Path

from agent.conftest import MakeRegistry, agent_command, clean_environ, fill_disk, free_bytes
from agent.fakes import FakeClock, FakeService
from purgecache.agent import CacheRegistry, Released, sync_once
from purgecache.agent.records import read_cache, read_instance
from purgecache.agent.state import load_state
from purgecache.agent.sync import SyncReport

POOL = "proj-a/linux"


def sync(registry: CacheRegistry, service: FakeService) -> SyncReport:
    return sync_once(registry, service, POOL)


def free_instance(registry: CacheRegistry, name: str, size: int) -> Path:
    path = registry.mount(name)
    (path / "content").write_bytes(b"x" * size)
    registry.release(path)
    return path


def test_a_full_disk_still_records_purges_and_releases_from_the_reserve(
    small_disk: Path, make_registry: MakeRegistry, service: FakeService, clock: FakeClock
) -> None:
    """A task fills the disk: the sync still records the purge, deletes the free instance,
    marks the one in use; a release at zero bytes free is recorded; the marked instance goes
    on release."""
    registry = make_registry(small_disk / "root")
    sync(registry, service)
    old, busy = registry.mount("checkouts"), registry.mount("checkouts")
    (old / "content").write_bytes(b"x" * 256 * 1024)
    registry.release(old)
    other = registry.mount("sccache")
    fill_disk(busy / "filler")
    clock.advance(10_000)
    service.purge("checkouts")

    report = sync(registry, service)
    assert report.exit_code == 0, report.problems
    assert (report.deleted, report.doomed) == ((old.parent,), (busy.parent,))
    assert read_cache(busy.parent.parent).purged_before == service.purges["checkouts"]  # type: ignore[union-attr]
    assert load_state(registry.layout.state).watermarks[POOL] == service.now()

    fill_disk(busy / "more")  # what the deletion freed, the reserve took back: fill the rest
    assert registry.release(other) == (Released.RELEASED, ())
    assert read_instance(other.parent).lease is None
    assert registry.release(busy) == (Released.DELETED, ())
    assert not busy.parent.exists() and free_bytes(small_disk) > 0


def test_without_a_reserve_the_purge_deletes_first_to_make_room(
    small_disk: Path, make_registry: MakeRegistry, service: FakeService, clock: FakeClock
) -> None:
    """No reserve left and not a byte free: the purged instance (holding what filled the disk)
    is moved aside and removed first, then the purge is recorded."""
    registry = make_registry(small_disk / "root")
    sync(registry, service)
    path = free_instance(registry, "checkouts", 0)
    clock.advance(10_000)
    service.purge("checkouts")
    registry.layout.reserve.unlink()  # used up by earlier writes
    fill_disk(path / "filler")  # what a task left in its cache filled the disk

    report = sync(registry, service)
    assert report.exit_code == 0 and report.deleted == (path.parent,)
    assert read_cache(path.parent.parent).purged_before == service.purges["checkouts"]  # type: ignore[union-attr]
    assert registry.layout.reserve.exists()  # refilled from the space freed


def test_a_release_that_cannot_be_recorded_names_the_file_and_what_was_kept(
    small_disk: Path,
) -> None:
    """Not a byte free, no reserve, nothing to delete: `release` exits 1 naming the record it
    could not write and saying the instance stays in use."""
    root = small_disk / "root"
    environ = clean_environ()
    mounted = subprocess.run(
        agent_command("mount", "checkouts", "--cache-root", str(root)),
        capture_output=True,
        text=True,
        env=environ,
        check=True,
    )
    path = Path(mounted.stdout.splitlines()[-1])
    (root / "reserve").unlink()
    fill_disk(path / "filler")
    released = subprocess.run(
        agent_command("release", str(path), "--cache-root", str(root)),
        capture_output=True,
        text=True,
        env=environ,
    )
    assert released.returncode == 1, released
    record = path.parent / "instance.json"
    assert released.stderr.endswith(
        f"Error: could not write {record}: No space left on device; it stays in use; "
        "release it again once there is room\n"
    ), released.stderr
    assert read_instance(path.parent).lease is not None

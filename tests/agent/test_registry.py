"""The cache registry: handing instances to tasks and taking them back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.conftest import MakeRegistry
from agent.fakes import FakeClock
from purgecache.agent import CacheRegistry, RegistryError, Released
from purgecache.agent.layout import NEW_PREFIX


def test_mount_creates_an_absolute_empty_data_directory(registry: CacheRegistry) -> None:
    """The first mount of a cache makes an instance and returns its absolute `data`."""
    path = registry.mount("checkouts")
    assert path.is_absolute() and path.is_dir() and path.name == "data"
    assert list(path.iterdir()) == []
    assert path.parent.parent == registry.layout.cache_dir("checkouts")


def test_concurrent_tasks_get_their_own_instances(registry: CacheRegistry) -> None:
    """Mounting a cache in use creates another instance; each task has its own."""
    paths = {registry.mount("checkouts") for _ in range(3)}
    assert len(paths) == 3


def test_released_instance_is_reused_with_its_content(registry: CacheRegistry) -> None:
    """A released instance goes to the next task, content intact."""
    path = registry.mount("checkouts")
    (path / "repo").write_text("cloned")
    assert registry.release(path) == (Released.RELEASED, ())
    assert registry.mount("checkouts") == path
    assert (path / "repo").read_text() == "cloned"


def test_newest_free_instance_is_preferred(registry: CacheRegistry, clock: FakeClock) -> None:
    """With several free instances the most recently created one is handed out."""
    older = registry.mount("checkouts")
    clock.advance(1000)
    newer = registry.mount("checkouts")
    for path in (older, newer):
        registry.release(path)
    assert registry.mount("checkouts") == newer


def test_release_accepts_the_instance_directory_too(registry: CacheRegistry) -> None:
    """`release` takes the printed data path or the instance directory."""
    path = registry.mount("checkouts")
    assert registry.release(path.parent)[0] is Released.RELEASED


def test_release_twice_or_of_a_gone_instance_is_harmless(registry: CacheRegistry) -> None:
    """A second release says not in use; a vanished instance says gone."""
    path = registry.mount("checkouts")
    registry.release(path)
    assert registry.release(path)[0] is Released.NOT_IN_USE
    gone = path.parent.with_name("i-0000000000000000") / "data"
    assert registry.release(gone)[0] is Released.GONE


def test_release_of_a_path_outside_the_registry_is_an_error(
    registry: CacheRegistry, tmp_path: Path
) -> None:
    """Paths that are not an instance of this root are refused."""
    for path in (tmp_path, registry.layout.root, registry.layout.caches / "x" / "y" / "z"):
        with pytest.raises(RegistryError):
            registry.release(path)


def test_a_reboot_ends_every_lease(registry: CacheRegistry, clock: FakeClock) -> None:
    """An instance still leased when the machine rebooted is free after the reboot."""
    path = registry.mount("checkouts")
    clock.reboot()
    assert registry.mount("checkouts") == path


def test_any_cache_name_works_and_is_recorded(registry: CacheRegistry) -> None:
    """Names with slashes, dots, NUL-free unicode and 4096 characters all mount."""
    for name in ("a/b", "../x", "名前", "y" * 4096):
        path = registry.mount(name)
        record = json.loads((path.parent.parent / "cache.json").read_text())
        assert record["cache_name"] == name


def test_invalid_cache_name_is_refused(registry: CacheRegistry) -> None:
    """An empty name is a ValueError, before anything is created."""
    with pytest.raises(ValueError):
        registry.mount("")
    assert list(registry.layout.caches.iterdir()) == []


def test_interrupted_creation_is_never_handed_out(registry: CacheRegistry) -> None:
    """A `.new-*` directory left by a crash goes to the trash and is removed there."""
    cache_dir = registry.layout.cache_dir("checkouts")
    registry.release(registry.mount("checkouts"))
    half = cache_dir / f"{NEW_PREFIX}i-0123456789abcdef"
    (half / "data").mkdir(parents=True)
    path = registry.mount("checkouts")
    assert half not in path.parents and not half.exists()
    assert registry.empty_trash().problems == ()
    assert registry.trash.leftovers() == []


def test_unreadable_instance_record_is_never_handed_out(registry: CacheRegistry) -> None:
    """An instance whose record is garbage is moved aside, and a fresh one is made."""
    path = registry.mount("checkouts")
    registry.release(path)
    (path.parent / "instance.json").write_text("{garbage")
    assert registry.mount("checkouts") != path
    assert not path.exists()


def test_unreadable_cache_record_purges_its_instances(
    registry: CacheRegistry, clock: FakeClock
) -> None:
    """When a cache's record is lost, which purges it held is unknown: instances go."""
    path = registry.mount("checkouts")
    registry.release(path)
    (path.parent.parent / "cache.json").write_text("[]")
    clock.advance(1000)
    assert registry.mount("checkouts") != path
    assert not path.exists()


def test_instances_lists_every_instance_with_its_state(registry: CacheRegistry) -> None:
    """`instances()` shows each instance with its lease."""
    busy = registry.mount("a")
    free = registry.mount("b")
    registry.release(free)
    leases = {info.path / "data": info.record.lease for info in registry.instances() if info.record}
    assert leases[busy] is not None and leases[free] is None


def test_roots_are_independent(make_registry: MakeRegistry, tmp_path: Path) -> None:
    """Two cache roots (two workers) share nothing."""
    first = make_registry(tmp_path / "w1")
    second = make_registry(tmp_path / "w2")
    assert first.mount("c").parents[2] != second.mount("c").parents[2]

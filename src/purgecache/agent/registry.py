"""The cache registry on a worker's disk: hand out instances, take them back, apply purges.

Every change happens under one `flock` on `agent.lock`, held for a few file operations and
never during network calls or while removing trees, so any number of agent processes (task
hooks, the daemon) can share a cache root. Instances are published and withdrawn by atomic
renames: an instance directory exists under `caches/` only complete with its record, and a
purged one leaves `caches/` in one step (to `trash/`) before it is removed, so a crash at any
moment leaves either a usable instance or a leftover in `trash/` that no task can get and the
next run removes.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from purgecache.agent.clock import ClockAnchor, SystemClock, WorkerClock, service_now
from purgecache.agent.files import (
    DISK_FULL,
    CorruptFile,
    disk_usage,
    exclusive_lock,
    fill_reserve,
    fsync_directory,
    remove_tree,
    use_reserve,
)
from purgecache.agent.layout import (
    DATA,
    NEW_PREFIX,
    Layout,
    check_cache_name,
    is_instance_id,
    new_instance_id,
)
from purgecache.agent.processes import Process, ended, identify, pid_namespace
from purgecache.agent.records import (
    CACHE_FILE,
    CacheRecord,
    InstanceRecord,
    read_cache,
    read_instance,
    write_cache,
    write_instance,
)
from purgecache.agent.settings import DEFAULT_CLOCK_SKEW_MS
from purgecache.agent.state import load_state, save_state
from purgecache.agent.trash import Emptied, Problem, Trash

log = logging.getLogger(__name__)

# Disk space kept in `reserve` and given back when a purge or a release cannot be recorded on
# a full disk: each record is a few hundred bytes, rewritten in place of the old one.
RESERVE_BYTES = 1 << 20
NOT_RECORDED = (
    "purge requests not all recorded, watermark unchanged: the next sync applies them again"
)
STILL_LEASED = "it stays in use; release it again once there is room"
NOT_MARKED = "the next sync tries again"
NOT_RECLAIMED = "it stays in use; the next sync tries again"


class RegistryError(Exception):
    """The registry cannot do what was asked (a usage problem, not a failed deletion)."""


class WriteFailed(OSError):
    """A registry file could not be written (a full disk, even after making room): names the
    file, why, and what stayed as it was."""

    def __init__(self, error: OSError, kept: str) -> None:
        super().__init__(error.errno, error.strerror, error.filename)
        self.kept = kept

    def __str__(self) -> str:
        return f"could not write {self.filename}: {self.strerror}; {self.kept}"


@dataclass(frozen=True, slots=True)
class PurgeOutcome:
    """What applying purge requests did: instances moved aside (to be removed), instances in
    use marked for deletion on release, the problems met, and instances whose tasks ended
    without releasing them (free again)."""

    moved: tuple[Path, ...] = ()
    doomed: tuple[Path, ...] = ()
    problems: tuple[Problem, ...] = ()
    watermark: int | None = None  # the pool's, afterwards
    reclaimed: tuple[Path, ...] = ()  # leases ended by their tasks' end, not by a release


@dataclass(slots=True)
class _Settled:
    """What applying purges found, instance by instance (see `PurgeOutcome`)."""

    moved: list[Path] = field(default_factory=list)
    doomed: list[Path] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    reclaimed: list[Path] = field(default_factory=list)
    tallied: dict[Path, CacheRecord] = field(default_factory=dict)  # by cache directory


class Released(enum.Enum):
    """What `release` did with an instance."""

    RELEASED = "released"  # free for the next task
    DELETED = "deleted"  # purged meanwhile (or unreadable): removed
    REPLACED = "replaced"  # its `data` is no longer a directory: removed, link not followed
    NOT_IN_USE = "not in use"  # nothing to do
    GONE = "gone"  # no such instance (any more)


@dataclass(frozen=True, slots=True)
class InstanceInfo:
    """One instance, for listings."""

    path: Path
    record: InstanceRecord | None  # None: unreadable (it will be removed)


@dataclass(frozen=True, slots=True)
class CacheStock:
    """One cache as a report sees it (see `CacheRegistry.stock`)."""

    record: CacheRecord
    instances: tuple[InstanceRecord | None, ...]
    in_trash: int  # instances withdrawn but not removed yet


class CacheRegistry:
    """The caches under one cache root.

    `clock` reads the worker's clocks (a fake in tests); `unknown_error_ms` is how far the
    worker's wall clock may be from the service's before a sync has measured it; `remove`
    deletes a tree (the default copes with read-only directories).
    """

    def __init__(
        self,
        root: Path,
        *,
        clock: WorkerClock | None = None,
        unknown_error_ms: int = DEFAULT_CLOCK_SKEW_MS,
        remove: Callable[[Path], None] = remove_tree,
    ) -> None:
        self.layout = Layout.at(root)
        self.clock: WorkerClock = clock or SystemClock()
        self.unknown_error_ms = unknown_error_ms
        self.trash = Trash(self.layout, remove)
        self._pid_ns = pid_namespace()

    def make_root(self) -> None:
        """Create the cache root again if it was removed (a daemon outlives it)."""
        if self.layout.make():
            log.warning("cache root %s was missing: created it again", self.layout.root)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with exclusive_lock(self.layout.lock):
            fill_reserve(self.layout.reserve, RESERVE_BYTES)
            yield

    def _record(self, write: Callable[[], None], kept: str) -> None:
        """Write a registry file, under the lock. On a full disk make room and try again;
        `WriteFailed` (saying `kept`) if that does not do."""
        try:
            write()
            return
        except OSError as error:
            if error.errno not in DISK_FULL or not self._make_room():
                raise WriteFailed(error, kept) from error
        try:
            write()
        except OSError as error:
            raise WriteFailed(error, kept) from error

    def _make_room(self) -> bool:
        """Free disk space for a registry write: the reserve, else what waits in the trash
        (removed under the lock, this once). Whether anything was freed."""
        if use_reserve(self.layout.reserve):
            log.warning("disk full: using the space reserved in %s", self.layout.reserve)
            return True
        waiting = self.trash.leftovers()
        self.trash.empty()
        return bool(waiting)

    # -- handing out and taking back ------------------------------------------------------

    def mount(self, cache_name: str, owners: tuple[Process, ...] | None = None) -> Path:
        """Lease a free instance of the cache to a task (a new one if none is free) and
        return its absolute `data` directory. The lease holds until `release`, a reboot, or
        the end of every process of `owners` (default: this process)."""
        check_cache_name(cache_name)
        if owners is None:
            owners = tuple(p for p in [identify(os.getpid())] if p is not None)
        with self._locked():
            cache_dir = self.layout.cache_dir(cache_name)
            cache = self._cache_record(cache_dir, cache_name)
            self._move_unfinished(cache_dir)
            boot = self.clock.boot_id()
            leased = partial(InstanceRecord.leased, boot_id=boot, owners=owners)
            for instance_dir, record in self._free_instances(cache_dir, cache, boot):
                now = self.clock.wall_ms()
                write_instance(instance_dir, leased(record, now_ms=now, pid_ns=self._pid_ns))
                (instance_dir / DATA).mkdir(exist_ok=True)  # in case a task removed it
                return instance_dir / DATA
            return self._create(cache_dir, cache_name, boot, owners)

    def release(self, path: Path) -> tuple[Released, tuple[Problem, ...]]:
        """Take an instance back from its task (`path` as `mount` printed it, whatever the
        task made of it); delete it now if a purge marked it while in use, or if its `data`
        is no longer a directory."""
        instance_dir = self.layout.instance_of(path)
        if instance_dir is None:
            raise RegistryError(f"{path} is not a cache instance under {self.layout.root}")
        size = _data_usage(instance_dir)  # outside the lock: a tree may be big
        with self._locked():
            if not instance_dir.is_dir():
                return Released.GONE, ()
            outcome, trash = self._release_locked(instance_dir, size)
        if isinstance(trash, Problem):
            return outcome, (trash,)
        return outcome, () if trash is None else self.trash.remove(trash)

    def _release_locked(
        self, instance_dir: Path, size: int
    ) -> tuple[Released, Path | Problem | None]:
        cache = self._judge_cache(instance_dir.parent)
        record = _instance_or_none(instance_dir)
        verdict = _unusable(instance_dir, record, cache)
        now = self.clock.wall_ms()
        if record is not None and verdict is None:
            if record.lease is None:
                return Released.NOT_IN_USE, None
            released = replace(record, lease=None, size_bytes=size, released=now)
            self._record(partial(write_instance, instance_dir, released), STILL_LEASED)
            return Released.RELEASED, None
        try:
            moved = self.trash.move_aside(instance_dir)
            if verdict is not Released.REPLACED:
                measured = None if record is None else replace(record, size_bytes=size)
                counted = cache.withdrew(measured, now)
                if counted is not cache:
                    self._tally(instance_dir.parent, counted)
            return verdict or Released.DELETED, moved
        except OSError as error:
            if record is not None:  # free now, still doomed: every sync tries again
                doomed = replace(record, lease=None, doomed=True)
                self._record(partial(write_instance, instance_dir, doomed), STILL_LEASED)
            return Released.RELEASED, Problem(instance_dir, "move aside", str(error))

    def _tally(self, cache_dir: Path, record: CacheRecord) -> None:
        """Keep a cache's tally; an instance already withdrawn stays so if it cannot."""
        try:
            self._record(partial(write_cache, cache_dir, record), "its tally is not counted")
        except OSError as error:
            log.warning("%s", error)

    def _held(self, record: InstanceRecord, boot: str) -> bool:
        """Whether a task holds the instance (see `Lease.held`)."""
        lease = record.lease
        return lease is not None and lease.held(boot, self._pid_ns, ended)

    # -- purging --------------------------------------------------------------------------

    def apply_purges(
        self,
        requests: Sequence[tuple[str, int]],
        pool: str,
        watermark: int | None,
        anchor: ClockAnchor | None,
    ) -> PurgeOutcome:
        """Move aside every instance that purge requests `(cache_name, before)` of `pool`
        cover (marking those in use instead), end the leases of tasks gone without a
        release, record the requests, then advance the pool's watermark.

        The requests are recorded in each cache's record before the watermark moves, so an
        instance that cannot be moved aside now is retried by every later sync and never
        handed out. Moving comes first, so that on a full disk the trash holds something to
        free for the records (all of it under the lock: no task sees the steps apart).
        Trees are removed afterwards by `empty_trash`, outside the lock.
        """
        found = _Settled()
        with self._locked():
            purged = self._purged_records(requests)
            boot = self.clock.boot_id()
            for cache_dir in self._cache_dirs():
                self._move_unfinished(cache_dir)
                cache = purged.get(cache_dir) or self._judge_cache(cache_dir)
                for instance_dir in self._instance_dirs(cache_dir):
                    self._settle(instance_dir, cache, boot, found)
            for cache_dir, record in (purged | found.tallied).items():
                self._record(partial(write_cache, cache_dir, record), NOT_RECORDED)
            state = load_state(self.layout.state).advanced(pool, watermark, anchor)
            self._record(partial(save_state, self.layout.state, state), NOT_RECORDED)
        return PurgeOutcome(
            tuple(found.moved),
            tuple(found.doomed),
            tuple(found.problems),
            state.watermarks.get(pool),
            tuple(found.reclaimed),
        )

    def _purged_records(self, requests: Sequence[tuple[str, int]]) -> dict[Path, CacheRecord]:
        """The cache records that purge requests change, by cache directory (not written)."""
        purged: dict[Path, CacheRecord] = {}
        for cache_name, before in requests:
            cache_dir = self.layout.cache_dir(cache_name)
            if not cache_dir.is_dir():
                continue  # never used here: any instance made later is newer than `before`
            record = purged.get(cache_dir) or self._judge_cache(cache_dir, cache_name)
            if record.cache_name != cache_name:
                continue
            if record.purged(before) != record:
                purged[cache_dir] = record.purged(before)
        return purged

    def _settle(self, instance_dir: Path, cache: CacheRecord, boot: str, found: _Settled) -> None:
        """Apply the cache's purge to one instance (marking it if a task holds it), and end
        its lease if every process of its task is gone (as a release would)."""
        record = _instance_or_none(instance_dir)
        if record is None and cache.purged_before is None:
            return  # unreadable, but nothing to purge: `mount` deals with it
        verdict = _unusable(instance_dir, record, cache)
        held = record is not None and self._held(record, boot)
        try:
            if record is not None and held:
                if verdict is Released.DELETED:
                    if not record.doomed:
                        marked = replace(record, doomed=True)
                        self._record(partial(write_instance, instance_dir, marked), NOT_MARKED)
                    found.doomed.append(instance_dir)
            elif verdict is not None:
                self.trash.move_aside(instance_dir)
                found.moved.append(instance_dir)
                if verdict is Released.DELETED:
                    tallied = found.tallied.get(instance_dir.parent, cache)
                    counted = tallied.withdrew(record, self.clock.wall_ms())
                    if counted is not tallied:
                        found.tallied[instance_dir.parent] = counted
            elif record is not None and record.lease is not None:
                free = replace(record, lease=None)
                self._record(partial(write_instance, instance_dir, free), NOT_RECLAIMED)
                found.reclaimed.append(instance_dir)
        except OSError as error:
            action = "mark" if held else "reclaim" if verdict is None else "move aside"
            found.problems.append(Problem(instance_dir, action, str(error)))

    def empty_trash(self, stop: Callable[[], bool] = lambda: False) -> Emptied:
        """Remove everything moved aside, leftovers of crashed runs included; then refill the
        reserve from the space freed, before a task takes it."""
        emptied = self.trash.empty(stop)
        with self._locked():
            pass  # taking the lock refills the reserve
        return emptied

    # -- listing --------------------------------------------------------------------------

    def instances(self) -> list[InstanceInfo]:
        """Every instance of every cache, with its record."""
        found: list[InstanceInfo] = []
        for cache_dir in self._cache_dirs():
            for instance_dir in self._instance_dirs(cache_dir):
                try:
                    found.append(InstanceInfo(instance_dir, read_instance(instance_dir)))
                except CorruptFile:
                    found.append(InstanceInfo(instance_dir, None))
        return found

    def cache_names(self) -> list[str]:
        """The name of every cache this worker has (unreadable records left out)."""
        records = (self._judge_cache(cache_dir) for cache_dir in self._cache_dirs())
        return [r.cache_name for r in records if not r.unreadable and r.cache_name]

    def stock(self) -> list[CacheStock]:
        """Every cache with its record, its instances' records (None: unreadable) and how
        many of its instances wait in the trash (read without the lock: each file is
        replaced atomically, so at worst a report is one change behind)."""
        left: dict[str, int] = {}
        for entry in self.trash.leftovers():
            key = entry.name.rpartition(".")[0]
            left[key] = left.get(key, 0) + 1
        found: list[CacheStock] = []
        for cache_dir in self._cache_dirs():
            record = self._judge_cache(cache_dir)
            if record.unreadable or not record.cache_name:
                continue
            instances = tuple(_instance_or_none(i) for i in self._instance_dirs(cache_dir))
            found.append(CacheStock(record, instances, left.get(cache_dir.name, 0)))
        return found

    # -- the parts ------------------------------------------------------------------------

    def _cache_record(self, cache_dir: Path, cache_name: str) -> CacheRecord:
        cache_dir.mkdir(exist_ok=True)
        record = self._judge_cache(cache_dir, cache_name)
        if record.cache_name != cache_name:
            raise RegistryError(
                f"{cache_dir} holds cache {record.cache_name!r}, not {cache_name!r}"
            )
        if not (cache_dir / CACHE_FILE).is_file() or record.unreadable:
            record = replace(record, unreadable=False)
            write_cache(cache_dir, record)
        return record

    def _judge_cache(self, cache_dir: Path, cache_name: str = "") -> CacheRecord:
        """The record of a cache; a new one for a new cache. If it cannot be read, what it
        said is unknown, so every instance existing now counts as purged."""
        try:
            record = read_cache(cache_dir)
        except CorruptFile as error:
            log.warning("cache record unreadable, purging its instances: %s", error)
            now = service_now(
                load_state(self.layout.state).anchor, self.clock, self.unknown_error_ms
            )
            return CacheRecord(cache_name, now.ms + now.error_ms + 1, unreadable=True)
        return CacheRecord(cache_name) if record is None else record

    def _cache_dirs(self) -> list[Path]:
        return sorted(path for path in self.layout.caches.iterdir() if path.is_dir())

    def _instance_dirs(self, cache_dir: Path) -> list[Path]:
        return sorted(path for path in cache_dir.iterdir() if is_instance_id(path.name))

    def _free_instances(
        self, cache_dir: Path, cache: CacheRecord, boot: str
    ) -> Iterator[tuple[Path, InstanceRecord]]:
        """Instances a task may have, newest first; purged ones met on the way are moved
        aside (their trees are removed by the next sync)."""
        candidates: list[tuple[int, Path, InstanceRecord]] = []
        for instance_dir in self._instance_dirs(cache_dir):
            record = _instance_or_none(instance_dir)
            if record is not None and self._held(record, boot):
                continue
            verdict = _unusable(instance_dir, record, cache)
            if verdict is not None or record is None:
                cache = self._withdraw(instance_dir, record, cache, verdict)
                continue
            candidates.append((record.created.ms, instance_dir, record))
        for _, instance_dir, record in sorted(candidates, key=lambda c: c[0], reverse=True):
            yield instance_dir, record

    def _withdraw(
        self,
        instance_dir: Path,
        record: InstanceRecord | None,
        cache: CacheRecord,
        verdict: Released | None,
    ) -> CacheRecord:
        """Move an unusable instance aside; counted in its cache's tally if purged. The
        cache's record afterwards."""
        moved = self.trash.try_move_aside(instance_dir)
        counted = cache.withdrew(record, self.clock.wall_ms())
        if not moved or verdict is not Released.DELETED or counted is cache:
            return cache
        self._tally(instance_dir.parent, counted)
        return counted

    def _create(
        self, cache_dir: Path, cache_name: str, boot: str, owners: tuple[Process, ...]
    ) -> Path:
        # The creation time is read before the directory exists: if anything, too early,
        # which can only make a purge delete the instance, never spare it.
        created = service_now(
            load_state(self.layout.state).anchor, self.clock, self.unknown_error_ms
        )
        instance_id = new_instance_id()
        staging = cache_dir / f"{NEW_PREFIX}{instance_id}"
        staging.mkdir()
        (staging / DATA).mkdir()
        record = InstanceRecord(cache_name, created).leased(
            boot, self.clock.wall_ms(), owners, self._pid_ns
        )
        write_instance(staging, record)
        instance_dir = cache_dir / instance_id
        os.rename(staging, instance_dir)
        fsync_directory(cache_dir)
        return instance_dir / DATA

    def _move_unfinished(self, cache_dir: Path) -> None:
        """Instances whose creation a crash interrupted (only possible outside the lock,
        which we hold) go to the trash."""
        for path in cache_dir.iterdir():
            if path.name.startswith(NEW_PREFIX):
                self.trash.try_move_aside(path)


def _data_usage(instance_dir: Path) -> int:
    """The disk usage of an instance's `data` (0 if it is not a directory: never followed)."""
    data = instance_dir / DATA
    try:
        if not stat.S_ISDIR(os.lstat(data).st_mode):
            return 0
    except OSError:
        return 0
    return disk_usage(data)


def _instance_or_none(instance_dir: Path) -> InstanceRecord | None:
    """The record of an instance; None (logged) if it is unreadable."""
    try:
        return read_instance(instance_dir)
    except CorruptFile as error:
        log.warning("unreadable instance: %s", error)
        return None


def _unusable(
    instance_dir: Path, record: InstanceRecord | None, cache: CacheRecord
) -> Released | None:
    """Why an instance must go rather than be handed out again, once no task holds it: it
    is unreadable or purged (DELETED), or a task made its `data` something other than a
    directory, say a symbolic link (REPLACED); None if it may be handed out."""
    if record is None or record.doomed or record.stale(cache):
        return Released.DELETED
    try:
        mode = os.lstat(instance_dir / DATA).st_mode
    except FileNotFoundError:
        return None  # `mount` makes it again
    return None if stat.S_ISDIR(mode) else Released.REPLACED

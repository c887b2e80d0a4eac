"""The registry's JSON files, as values: a cache's record, an instance's record and its lease.

Times are stored as the API writes them (`2026-01-01T12:00:00.000Z`), in the service's clock.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from purgecache.agent.clock import ServiceTime
from purgecache.agent.files import CorruptFile, read_json, write_json_atomic
from purgecache.agent.processes import Process
from purgecache.model import format_time, parse_since

CACHE_FILE = "cache.json"
INSTANCE_FILE = "instance.json"


def _time(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise CorruptFile(f"{name} should be a time, got {value!r}")
    try:
        return parse_since(value)
    except ValueError as error:
        raise CorruptFile(f"{name}: {error}") from error


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise CorruptFile(f"{name} should be a string, got {value!r}")
    return value


def _integer(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise CorruptFile(f"{name} should be an integer, got {value!r}")
    return value


def _count(data: dict[str, Any], name: str) -> int:
    """A count that an older agent's record lacks (0)."""
    return 0 if name not in data else _integer(data, name)


@dataclass(frozen=True, slots=True)
class Tally:
    """What honouring a cache's latest purge took: instances withdrawn from the registry
    for it, their size as recorded at their last release, and the oldest one's age then."""

    deleted: int = 0
    bytes_freed: int = 0
    oldest_deleted_age_ms: int | None = None

    def plus(self, instance: InstanceRecord | None, now_ms: int) -> Tally:
        """The tally after withdrawing `instance` (None: unreadable, size and age unknown)."""
        if instance is None:
            return replace(self, deleted=self.deleted + 1)
        age = max(0, now_ms - instance.created.ms)
        oldest = age if self.oldest_deleted_age_ms is None else max(age, self.oldest_deleted_age_ms)
        size = instance.size_bytes or 0
        return Tally(self.deleted + 1, self.bytes_freed + size, oldest)

    def to_json(self) -> dict[str, Any]:
        return {
            "deleted": self.deleted,
            "bytes_freed": self.bytes_freed,
            "oldest_deleted_age_ms": self.oldest_deleted_age_ms,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tally:
        oldest = data.get("oldest_deleted_age_ms")
        age = None if oldest is None else _integer(data, "oldest_deleted_age_ms")
        return cls(_count(data, "deleted"), _count(data, "bytes_freed"), age)


@dataclass(frozen=True, slots=True)
class CacheRecord:
    """A named cache on this worker; instances created before `purged_before` must go."""

    cache_name: str
    purged_before: int | None = None  # ms, service clock: the latest `before` received
    unreadable: bool = False  # stands in for a file that could not be read (not stored)
    tally: Tally = Tally()  # what honouring `purged_before` took so far

    def purged(self, before: int) -> CacheRecord:
        """The record after a purge request with this `before` (the later one wins, and
        its tally starts from nothing)."""
        if self.purged_before is not None and self.purged_before >= before:
            return self
        return replace(self, purged_before=before, tally=Tally())

    def withdrew(self, instance: InstanceRecord | None, now_ms: int) -> CacheRecord:
        """The record after one of its instances left the registry for its purge."""
        if self.purged_before is None or self.unreadable:
            return self
        return replace(self, tally=self.tally.plus(instance, now_ms))

    def to_json(self) -> dict[str, Any]:
        before = self.purged_before
        return {
            "cache_name": self.cache_name,
            "purged_before": None if before is None else format_time(before),
            **self.tally.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CacheRecord:
        tally = Tally.from_json(data)
        return cls(_text(data, "cache_name"), _time(data, "purged_before"), tally=tally)


@dataclass(frozen=True, slots=True)
class Lease:
    """An instance handed to a task: by which boot of the machine, when, and to which
    processes (`owners`, seen from the pid namespace `pid_ns`)."""

    boot_id: str
    since: int  # ms, worker clock (informational)
    pid: int  # of the `mount` command (informational: it exits at once)
    owners: tuple[Process, ...] = ()  # none known (an older agent's lease): never ends
    pid_ns: str = ""

    def held(self, boot_id: str, pid_ns: str, ended: Callable[[Process], bool]) -> bool:
        """Whether the lease still holds: a reboot ends every task, and so every lease; on
        the same boot it ends once every owner has `ended`, as seen from the same pid
        namespace (from another one, or with no owner known, nothing can be told)."""
        if boot_id and self.boot_id and self.boot_id != boot_id:
            return False
        if not self.owners or not pid_ns or self.pid_ns != pid_ns:
            return True
        return not all(ended(owner) for owner in self.owners)

    def to_json(self) -> dict[str, Any]:
        return {
            "boot_id": self.boot_id,
            "since": format_time(self.since),
            "pid": self.pid,
            "owners": [{"pid": owner.pid, "start": owner.start} for owner in self.owners],
            "pid_ns": self.pid_ns,
        }

    @classmethod
    def from_json(cls, data: object) -> Lease | None:
        if not isinstance(data, dict):
            return None
        owners = data.get("owners", [])
        if not isinstance(owners, list) or not all(isinstance(o, dict) for o in owners):
            raise CorruptFile(f"owners should be a list of processes, got {owners!r}")
        return cls(
            _text(data, "boot_id"),
            _time(data, "since") or 0,
            _integer(data, "pid"),
            tuple(Process(_integer(o, "pid"), _integer(o, "start")) for o in owners),
            _text(data, "pid_ns") if "pid_ns" in data else "",
        )


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """One instance: created at `created` (service clock, ± its error), maybe leased to a task,
    maybe `doomed` (purged while in use: deleted on release)."""

    cache_name: str
    created: ServiceTime
    lease: Lease | None = None
    doomed: bool = False
    size_bytes: int | None = None  # disk usage of `data`, measured at its last release
    released: int | None = None  # ms, worker clock: its last release

    @property
    def last_used(self) -> int:
        """When a task last had it (ms, worker clock): its lease or its last release."""
        return max(self.released or 0, 0 if self.lease is None else self.lease.since)

    def stale(self, cache: CacheRecord) -> bool:
        """Whether a purge covers this instance: it may have been created before the latest
        `before` (within the error of its creation time, deleting when in doubt)."""
        before = cache.purged_before
        return before is not None and self.created.ms - self.created.error_ms < before

    def leased(
        self, boot_id: str, now_ms: int, owners: tuple[Process, ...], pid_ns: str
    ) -> InstanceRecord:
        """The record handed by this process to a task that `owners` run."""
        return replace(self, lease=Lease(boot_id, now_ms, os.getpid(), owners, pid_ns))

    def to_json(self) -> dict[str, Any]:
        return {
            "cache_name": self.cache_name,
            "created": format_time(self.created.ms),
            "created_error_ms": self.created.error_ms,
            "lease": None if self.lease is None else self.lease.to_json(),
            "doomed": self.doomed,
            "size_bytes": self.size_bytes,
            "released": None if self.released is None else format_time(self.released),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InstanceRecord:
        created = ServiceTime(_time(data, "created") or 0, _integer(data, "created_error_ms"))
        doomed = data.get("doomed", False)
        if not isinstance(doomed, bool):
            raise CorruptFile(f"doomed should be true or false, got {doomed!r}")
        size = None if data.get("size_bytes") is None else _integer(data, "size_bytes")
        lease = Lease.from_json(data.get("lease"))
        released = _time(data, "released")
        return cls(_text(data, "cache_name"), created, lease, doomed, size, released)


def read_cache(cache_dir: Path) -> CacheRecord | None:
    """The record of a cache directory; None if it has none yet."""
    data = read_json(cache_dir / CACHE_FILE)
    return None if data is None else CacheRecord.from_json(data)


def write_cache(cache_dir: Path, record: CacheRecord) -> None:
    write_json_atomic(cache_dir / CACHE_FILE, record.to_json())


def read_instance(instance_dir: Path) -> InstanceRecord:
    """The record of an instance; CorruptFile if it is missing or unreadable (an instance is
    only ever published with its record, so either means it must not be used)."""
    data = read_json(instance_dir / INSTANCE_FILE)
    if data is None:
        raise CorruptFile(f"{instance_dir}: no {INSTANCE_FILE}")
    return InstanceRecord.from_json(data)


def write_instance(instance_dir: Path, record: InstanceRecord) -> None:
    write_json_atomic(instance_dir / INSTANCE_FILE, record.to_json())

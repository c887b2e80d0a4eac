"""Where the registry keeps things under the cache root.

    CACHE_ROOT/
      agent.lock                      flock: every change of the registry holds it (briefly)
      state.json                      watermark per worker pool, service clock anchor
      reserve                         disk space kept for recording purges on a full disk
      caches/<key>/cache.json         the cache name and the latest `before` received for it
      caches/<key>/<id>/instance.json creation time, lease, purge mark of one instance
      caches/<key>/<id>/data/         what a task gets: the cache's content
      caches/<key>/.new-<id>/         an instance being created (renamed to <id> when complete)
      trash/<key>.<id>/               an instance moved out of the way, being removed

`<key>` is a readable slug of the cache name plus a hash of the whole name, so that any cache
name (up to 4096 characters of anything but NUL, `/` included) maps to one safe directory name.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from purgecache.model import MAX_CACHE_NAME_LENGTH

DATA = "data"
NEW_PREFIX = ".new-"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_INSTANCE_ID = re.compile(r"i-[0-9a-f]{16}")
_SLUG_LENGTH = 48


def check_cache_name(cache_name: str) -> str:
    """The cache name, if the service could hold it (1..4096 characters, no NUL)."""
    if not cache_name or len(cache_name) > MAX_CACHE_NAME_LENGTH or "\0" in cache_name:
        raise ValueError(
            f"invalid cache name {cache_name[:80]!r}: 1 to {MAX_CACHE_NAME_LENGTH} "
            "characters, no NUL"
        )
    return cache_name


def cache_key(cache_name: str) -> str:
    """The directory name of a cache: `<slug>-<first 16 hex digits of sha256(name)>`."""
    slug = _UNSAFE.sub("_", cache_name).lstrip(".")[:_SLUG_LENGTH] or "cache"
    digest = hashlib.sha256(cache_name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{slug}-{digest}"


def new_instance_id() -> str:
    """A fresh instance id (random: ids never repeat, not even after a purge)."""
    return f"i-{secrets.token_hex(8)}"


def is_instance_id(name: str) -> bool:
    """Whether a directory name is an instance id (not `.new-...`, not `cache.json`)."""
    return _INSTANCE_ID.fullmatch(name) is not None


@dataclass(frozen=True, slots=True)
class Layout:
    """The paths of one cache root (absolute, symbolic links resolved)."""

    root: Path

    @classmethod
    def at(cls, root: Path) -> Layout:
        """The layout of `root`, created if missing."""
        layout = cls(root.expanduser().resolve())
        layout.make()
        return layout

    def make(self) -> bool:
        """Create the root, `caches/` and `trash/` where missing; whether any was."""
        made = False
        for directory in (self.root, self.caches, self.trash):
            if not directory.is_dir():
                directory.mkdir(mode=0o755, parents=True, exist_ok=True)
                made = True
        return made

    @property
    def lock(self) -> Path:
        return self.root / "agent.lock"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def reserve(self) -> Path:
        return self.root / "reserve"

    @property
    def caches(self) -> Path:
        return self.root / "caches"

    @property
    def trash(self) -> Path:
        return self.root / "trash"

    def cache_dir(self, cache_name: str) -> Path:
        """The directory of a cache's instances."""
        return self.caches / cache_key(cache_name)

    def trash_path(self, instance_dir: Path) -> Path:
        """Where an instance goes when it is moved out of the way."""
        return self.trash / f"{instance_dir.parent.name}.{instance_dir.name.lstrip('.')}"

    def trashed_instance(self, entry: Path) -> Path | None:
        """The instance that the trash entry `entry` was (None for anything else)."""
        key, _, instance_id = entry.name.rpartition(".")
        return self.caches / key / instance_id if key and is_instance_id(instance_id) else None

    def instance_of(self, path: Path) -> Path | None:
        """The instance directory that `path` (an instance or its `data`) names, or None when
        `path` is not shaped like one of this root's instances.

        Only the part above the cache directory is resolved: whatever a task made of `data`
        (a symbolic link to anywhere) is never followed, and a cache or instance directory
        that is a symbolic link is none of this root's."""
        path = Path(os.path.abspath(path.expanduser()))
        if path.name == DATA:
            path = path.parent
        cache_key = path.parent.name
        if not is_instance_id(path.name) or path.parent.parent.resolve() != self.caches:
            return None
        instance_dir = self.caches / cache_key / path.name
        if instance_dir.parent.is_symlink() or instance_dir.is_symlink():
            return None
        return instance_dir

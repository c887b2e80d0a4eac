"""File-system primitives the registry is built from: atomic JSON files, `flock` locks and a
tree removal that copes with read-only directories. Everything here is POSIX (Linux, macOS).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import shutil
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any


class CorruptFile(ValueError):
    """A registry file exists but is not the JSON object it should be."""


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new entry in `directory` survive a power loss."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, data: dict[str, Any], *, durable: bool = True) -> None:
    """Replace `path` with `data` so that readers see the old or the new file, never a part;
    `durable` also makes the new file survive a power loss before this returns (fsync)."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with temporary.open("x", encoding="utf-8") as file:
            json.dump(data, file, indent=1, sort_keys=True)
            file.write("\n")
            file.flush()
            if durable:
                os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        if error.filename is None:  # a failed write names no file: name the one meant
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if durable:
        fsync_directory(path.parent)


DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def fill_reserve(path: Path, size: int) -> bool:
    """Make sure the file `path` holds `size` bytes of disk space for later (best effort, so
    that a full disk can still record a purge or a release); whether it does."""
    if path.exists():
        return True
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.posix_fallocate(fd, 0, size)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)
        return False
    return True


def use_reserve(path: Path) -> bool:
    """Give the space of the reserve `path` back to the file system; whether there was one."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, None when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except ValueError as error:
        raise CorruptFile(f"{path}: not JSON: {error}") from error
    if not isinstance(data, dict):
        raise CorruptFile(f"{path}: expected a JSON object")
    return data


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive `flock` on the file `path` (created if missing), waiting for it.

    The lock file is never deleted: deleting it would let two processes lock two different
    files of the same name.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def try_lock_directory(path: Path) -> Iterator[bool]:
    """Try to `flock` the directory `path` without waiting: True if this process holds it,
    False if another one does or the directory is gone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _make_writable(path: str) -> None:
    with contextlib.suppress(OSError):
        mode = os.lstat(path).st_mode
        if stat.S_ISDIR(mode):
            os.chmod(path, stat.S_IMODE(mode) | stat.S_IRWXU)


def _rmtree(
    path: str, on_error: Callable[[Callable[..., object], str, BaseException], None]
) -> None:
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=on_error)
    else:
        shutil.rmtree(
            path, onerror=lambda function, failed, info: on_error(function, failed, info[1])
        )


class TreeLeftovers(OSError):
    """A tree removal removed all it could but left `leftovers`: the entries that could not
    be removed (not the directories holding them)."""

    SHOWN = 10  # paths named in the message; the rest are counted

    def __init__(self, leftovers: dict[str, OSError]) -> None:
        self.leftovers = tuple(sorted(leftovers))
        shown = [f"{path} ({_reason(leftovers[path])})" for path in self.leftovers[: self.SHOWN]]
        more = len(self.leftovers) - len(shown)
        count = len(self.leftovers)
        super().__init__(
            f"{count} {'entry' if count == 1 else 'entries'} left: "
            + "; ".join(shown)
            + (f"; and {more} more" if more else "")
        )


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def _ancestors(paths: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for path in paths:
        parent = os.path.dirname(path)
        while parent not in found and parent != path:
            found.add(parent)
            path, parent = parent, os.path.dirname(parent)
    return found


class _Removal:
    """One tree removal that goes on past the entries it cannot remove, and collects them."""

    def __init__(self) -> None:
        self.retried: set[str] = set()
        self.failures: dict[str, OSError] = {}

    def run(self, path: str) -> None:
        _rmtree(path, self.on_error)

    def on_error(self, function: Callable[..., object], failed: str, error: BaseException) -> None:
        if isinstance(error, FileNotFoundError):  # already gone
            return
        if not isinstance(error, OSError):
            raise error
        if isinstance(error, PermissionError) and failed not in self.retried:
            # A task may leave read-only directories (Go's module cache does): make the
            # parent and the entry writable and try once more.
            self.retried.add(failed)
            _make_writable(os.path.dirname(failed))
            _make_writable(failed)
            if function not in (os.unlink, os.rmdir):  # a directory that could not be listed
                self.run(failed)
                return
            try:
                function(failed)
                return
            except FileNotFoundError:
                return
            except OSError as again:
                error = again
        self.failures[failed] = error

    def leftovers(self) -> dict[str, OSError]:
        """The entries that failed, less the directories that failed for holding one."""
        holders = _ancestors(self.failures)
        return {path: error for path, error in self.failures.items() if path not in holders}


def remove_tree(path: Path) -> None:
    """Delete the directory `path` and everything in it, never following symbolic links.

    An entry that cannot be removed does not stop the rest: everything else goes, then
    `TreeLeftovers` names what is left (a later call tries those again)."""
    removal = _Removal()
    removal.run(str(path))
    if removal.failures:
        raise TreeLeftovers(removal.leftovers())


def boot_id() -> str:
    """An identifier of this boot of the machine ("" where the kernel does not offer one)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text("ascii").strip()
    except OSError:
        return ""


def disk_usage(path: Path) -> int:
    """The bytes the tree at `path` takes on disk, as `du` counts them (blocks; a hard link
    once; symbolic links not followed); what cannot be read counts as nothing."""
    seen: set[tuple[int, int]] = set()
    total = 0
    pending = [str(path)]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                found = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if (found.st_dev, found.st_ino) not in seen:
                seen.add((found.st_dev, found.st_ino))
                total += found.st_blocks * 512
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
    return total

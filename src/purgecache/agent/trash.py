"""`trash/`: where purged instances go, in one atomic rename, before their trees are removed.

Once renamed, an instance is out of the registry: no task can get it, whatever happens next.
Removing the tree may take long, fail (an immutable file, a busy mount point) or be cut short
by a crash; whatever is left in `trash/` is removed by the next sync. Two processes
never remove the same entry at once: each holds a `flock` on the entry while removing it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from purgecache.agent.files import try_lock_directory
from purgecache.agent.layout import Layout

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Problem:
    """An instance the registry could not move aside, mark or remove; it kept going."""

    path: Path
    action: str  # "move aside", "mark" or "remove"
    error: str

    def __str__(self) -> str:
        return f"could not {self.action} {self.path}: {self.error}"


@dataclass(frozen=True, slots=True)
class Emptied:
    """What emptying the trash did: the entries this process removed, and what it could
    not remove."""

    removed: tuple[Path, ...] = ()
    problems: tuple[Problem, ...] = ()


class Trash:
    """The trash of one cache root; `remove` deletes a tree."""

    def __init__(self, layout: Layout, remove: Callable[[Path], None]) -> None:
        self.layout = layout
        self._remove_tree = remove

    def move_aside(self, instance_dir: Path) -> Path:
        """Take an instance out of the registry (OSError if it cannot be renamed)."""
        target = self.layout.trash_path(instance_dir)
        os.rename(instance_dir, target)
        return target

    def try_move_aside(self, instance_dir: Path) -> bool:
        """Move aside if possible; a failure is logged (a later sync tries again)."""
        try:
            self.move_aside(instance_dir)
        except OSError as error:
            log.warning("%s", Problem(instance_dir, "move aside", str(error)))
            return False
        return True

    def remove(self, entry: Path) -> tuple[Problem, ...]:
        """Remove one entry, unless another process is removing it right now."""
        outcome = self._remove(entry)
        return (outcome,) if isinstance(outcome, Problem) else ()

    def _remove(self, entry: Path) -> Problem | bool:
        """Remove one entry: True if this process removed it, False if another one is
        removing it, or what went wrong."""
        if entry.is_symlink() or not entry.is_dir():
            entry.unlink(missing_ok=True)
            return True
        with try_lock_directory(entry) as mine:
            if not mine:
                return False
            try:
                self._remove_tree(entry)
            except OSError as error:
                return Problem(entry, "remove", str(error))
        return True

    def empty(self, stop: Callable[[], bool] = lambda: False) -> Emptied:
        """Remove every entry, leftovers of crashed runs included, until `stop()`."""
        removed: list[Path] = []
        problems: list[Problem] = []
        for entry in self.leftovers():
            if stop():
                break
            outcome = self._remove(entry)
            if isinstance(outcome, Problem):
                problems.append(outcome)
            elif outcome:
                removed.append(entry)
        return Emptied(tuple(removed), tuple(problems))

    def leftovers(self) -> list[Path]:
        """What is waiting to be removed."""
        return sorted(self.layout.trash.iterdir())

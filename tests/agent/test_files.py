"""File-system primitives: atomic JSON files, locks, tree removal."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.conftest import lift_immutable
from purgecache.agent.files import (
    CorruptFile,
    TreeLeftovers,
    exclusive_lock,
    read_json,
    remove_tree,
    try_lock_directory,
    write_json_atomic,
)


def test_atomic_write_replaces_whole_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    """A rewrite leaves exactly the new JSON and no temporary file beside it."""
    path = tmp_path / "state.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"b": 2})
    assert read_json(path) == {"b": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_read_json_missing_is_none_and_garbage_is_corrupt(tmp_path: Path) -> None:
    """A missing file reads as None; a non-object or non-JSON file is CorruptFile."""
    assert read_json(tmp_path / "nope.json") is None
    for text in ("{not json", json.dumps([1, 2])):
        (tmp_path / "bad.json").write_text(text)
        with pytest.raises(CorruptFile):
            read_json(tmp_path / "bad.json")


def test_exclusive_lock_serialises_holders(tmp_path: Path) -> None:
    """A second holder of the lock waits until the first lets go."""
    order: list[str] = []
    lock = tmp_path / "agent.lock"

    def second() -> None:
        with exclusive_lock(lock):
            order.append("second")

    with exclusive_lock(lock):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.2)
        order.append("first")
    thread.join(5)
    assert order == ["first", "second"]


def test_directory_lock_is_not_taken_twice_and_missing_is_not_mine(tmp_path: Path) -> None:
    """Only one open of a directory gets its lock; a missing directory is never ours."""
    with try_lock_directory(tmp_path) as first, try_lock_directory(tmp_path) as second:
        assert (first, second) == (True, False)
    with try_lock_directory(tmp_path / "gone") as mine:
        assert mine is False


def test_remove_tree_copes_with_read_only_directories(tmp_path: Path) -> None:
    """Trees with read-only and unreadable directories (Go's module cache) are removed."""
    top = tmp_path / "instance"
    (top / "ro" / "deep").mkdir(parents=True)
    (top / "ro" / "deep" / "file").write_text("x")
    (top / "locked").mkdir()
    (top / "locked" / "file").write_text("y")
    os.chmod(top / "ro" / "deep", stat.S_IRUSR | stat.S_IXUSR)
    os.chmod(top / "ro", stat.S_IRUSR | stat.S_IXUSR)
    os.chmod(top / "locked", 0)
    remove_tree(top)
    assert not top.exists()


def test_remove_tree_never_follows_symbolic_links(tmp_path: Path) -> None:
    """A link inside the tree is removed, not what it points to."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("precious")
    top = tmp_path / "instance"
    top.mkdir()
    (top / "link").symlink_to(outside, target_is_directory=True)
    remove_tree(top)
    assert (outside / "keep").read_text() == "precious"


def test_remove_tree_removes_all_but_an_immutable_file_and_names_it(
    tmp_path: Path, immutable: Callable[[Path], None]
) -> None:
    """A file even root cannot delete, in the middle of a tree: every other entry is removed,
    and the error names that file alone (not the directories holding it)."""
    top = tmp_path / "instance"
    for group in ("a", "m", "z"):
        (top / group).mkdir(parents=True)
        for i in range(30):
            (top / group / f"f{i:02}").write_text("x" * 100)
    stuck = top / "m" / "f15"
    immutable(stuck)
    with pytest.raises(TreeLeftovers) as failed:
        remove_tree(top)
    assert failed.value.leftovers == (str(stuck),)
    assert str(failed.value) == f"1 entry left: {stuck} (Operation not permitted)"
    assert [str(path) for path in top.rglob("*")] == [str(stuck.parent), str(stuck)]
    lift_immutable(stuck)
    remove_tree(top)
    assert not top.exists()


def test_tree_leftovers_name_ten_paths_and_count_the_rest() -> None:
    """A long list of leftovers stays one readable message."""
    error = PermissionError(1, "Operation not permitted")
    leftovers = TreeLeftovers({f"/t/f{i:02}": error for i in range(12)})
    assert len(leftovers.leftovers) == 12
    assert str(leftovers).startswith("12 entries left: /t/f00 (Operation not permitted); ")
    assert str(leftovers).endswith("/t/f09 (Operation not permitted); and 2 more")

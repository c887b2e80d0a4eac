"""Where things live under the cache root, and how cache names become directory names."""

from __future__ import annotations

from pathlib import Path

import pytest

from purgecache.agent.layout import Layout, cache_key, check_cache_name, new_instance_id

AWKWARD_NAMES = [
    "checkouts",
    "Checkouts",
    "level-3-checkouts",
    "a/b",
    "a_b",
    "../../etc",
    ".hidden",
    "名前",
    "x" * 4096,
    "x" * 4095,
    " ",
]


def test_cache_keys_are_distinct_safe_and_short() -> None:
    """Every name gets its own key: no slash, no leading dot, at most 65 characters."""
    keys = [cache_key(name) for name in AWKWARD_NAMES]
    assert len(set(keys)) == len(keys)
    for key in keys:
        assert "/" not in key and not key.startswith(".") and len(key) <= 65
    assert cache_key("checkouts").startswith("checkouts-")


def test_cache_key_is_stable() -> None:
    """The key of a name never changes (it is stored on disk)."""
    assert cache_key("checkouts") == "checkouts-aa06130bfe95bdd6"


@pytest.mark.parametrize("name", ["", "a\0b", "x" * 4097])
def test_names_the_service_cannot_hold_are_refused(name: str) -> None:
    """Empty names, NUL and more than 4096 characters are ValueErrors."""
    with pytest.raises(ValueError):
        check_cache_name(name)


def test_instance_of_accepts_instance_or_data_and_nothing_else(tmp_path: Path) -> None:
    """Release paths: the instance directory or its data, under this root's caches only."""
    layout = Layout.at(tmp_path / "root")
    instance = layout.cache_dir("checkouts") / new_instance_id()
    assert layout.instance_of(instance / "data") == instance
    assert layout.instance_of(instance) == instance
    for wrong in (
        instance / "data" / "sub",
        instance.parent,
        layout.root,
        tmp_path / "elsewhere" / "caches" / instance.parent.name / instance.name,
        instance.parent / ".new-i-0123456789abcdef",
    ):
        assert layout.instance_of(wrong) is None, wrong


def test_layout_creates_its_directories(tmp_path: Path) -> None:
    """Opening a root creates it with caches/ and trash/."""
    layout = Layout.at(tmp_path / "a" / "b")
    assert layout.caches.is_dir() and layout.trash.is_dir()

"""The selector matcher against its one table of cases (tests/data/selector_cases.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from purgecache.selectors import PatternError, Selector, compile_pattern, is_literal, unescape

TABLE = json.loads((Path(__file__).parent / "data" / "selector_cases.json").read_text("utf-8"))
CASES: list[dict[str, Any]] = TABLE["cases"]


@pytest.mark.parametrize("case", CASES, ids=[f"{c['kind']}:{c['pattern']!r}" for c in CASES])
def test_each_pattern_matches_what_its_row_says(case: dict[str, Any]) -> None:
    """Every row: the strings it lists match or miss, or the pattern is refused with a reason."""
    within = case["kind"] == "pool"
    if "error" in case:
        with pytest.raises(PatternError, match=case["error"].replace("*", r"\*")):
            compile_pattern(case["pattern"], within_segment=within)
        return
    pattern = compile_pattern(case["pattern"], within_segment=within)
    assert [text for text in case["match"] if pattern.fullmatch(text) is None] == []
    assert [text for text in case["miss"] if pattern.fullmatch(text) is not None] == []


@pytest.mark.parametrize("row", TABLE["literal"], ids=[r["pattern"] for r in TABLE["literal"]])
def test_a_literal_pattern_names_one_cache(row: dict[str, Any]) -> None:
    """A pattern without unescaped wildcards is literal, and names the string it matches."""
    assert is_literal(row["pattern"]) is row["literal"]
    if row["literal"]:
        assert unescape(row["pattern"]) == row["name"]
        assert compile_pattern(row["pattern"]).fullmatch(row["name"]) is not None


def test_a_selector_expands_to_the_known_pairs_it_matches() -> None:
    """`expand` keeps the known pairs both patterns match, sorted, each once; a bad pattern is
    refused when the selector is made."""
    selector = Selector("proj-a/*", "level-3-*")
    known = [
        ("proj-a/linux", "level-3-checkouts"),
        ("proj-a/linux", "level-1-checkouts"),
        ("proj-b/linux", "level-3-checkouts"),
        ("proj-a/win", "level-3-objects"),
        ("proj-a/linux", "level-3-checkouts"),
    ]
    assert selector.expand(known) == [
        ("proj-a/linux", "level-3-checkouts"),
        ("proj-a/win", "level-3-objects"),
    ]
    with pytest.raises(PatternError):
        Selector("proj-a/**", "x")

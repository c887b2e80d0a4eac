"""The selector matcher against its one table of cases (tests/data/selector_cases.json), and
the service's selector, its expansion and the CLI's usage errors against the same table."""

from __future__ import annotations

import re
from typing import Any

import pytest
from click.testing import CliRunner

from purgecache.cli import main
from purgecache.expansion import expand
from purgecache.selectors import PatternError, Selector, compile_pattern, is_literal, unescape
from purgecache.storage.selectors import Candidate

from conftest import ADMIN
from support.selector_cases import CASES, MATCHING, REFUSED, TABLE, case_id

# Nothing listens there: a command that sent a request would fail with exit 1, not 2.
ENV = {
    "TASKCLUSTER_ROOT_URL": "http://127.0.0.1:9",
    "TASKCLUSTER_CLIENT_ID": ADMIN[0],
    "TASKCLUSTER_ACCESS_TOKEN": ADMIN[1],
    "TASKCLUSTER_PROXY_URL": "",
}


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
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


def as_selector(case: dict[str, Any]) -> tuple[str, str]:
    """A row's pattern in a selector: a pool row's as the pool pattern (any cache), a cache
    row's as the cache pattern (of one pool's caches)."""
    return (case["pattern"], "*") if case["kind"] == "pool" else ("p/w", case["pattern"])


def as_pair(case: dict[str, Any], text: str) -> tuple[str, str]:
    return (text, "c") if case["kind"] == "pool" else ("p/w", text)


@pytest.mark.parametrize("case", MATCHING, ids=[case_id(c) for c in MATCHING])
def test_each_row_holds_for_the_services_selector_and_its_expansion(case: dict[str, Any]) -> None:
    """`Selector.matches` and the expansion of known pairs (as the service expands a
    selector from its candidates) take exactly the row's matching strings."""
    selector = Selector(*as_selector(case))
    pairs = [as_pair(case, text) for text in case["match"] + case["miss"]]
    wanted = [as_pair(case, text) for text in case["match"]]
    assert [pair for pair in pairs if selector.matches(*pair)] == wanted
    candidates = [Candidate(pool, cache, "history", None, 0) for pool, cache in pairs]
    assert expand(selector, candidates).keys == sorted(set(wanted))


@pytest.mark.parametrize("case", REFUSED, ids=[case_id(c) for c in REFUSED])
def test_each_refused_row_is_refused_by_the_selector_and_the_cli(case: dict[str, Any]) -> None:
    """The service's `Selector` refuses the row's pattern with its reason; `purge --match`
    and `cancel --match` are usage errors (exit 2) saying it, before sending anything."""
    pool, cache = (case["pattern"], "x") if case["kind"] == "pool" else ("p/*", case["pattern"])
    with pytest.raises(PatternError, match=re.escape(case["error"])):
        Selector(pool, cache)
    for command in ("purge", "cancel"):
        result = CliRunner().invoke(main, [command, "--match", pool, cache], env=ENV)
        assert (result.exit_code, case["error"] in result.output) == (2, True), result.output

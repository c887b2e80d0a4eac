"""A selector's expansion (issue 16, item 1): candidates from the inventory, the history and
the requests merge into one sorted pair each, with distinct workers and their bytes; the
digest is the documented canonical one; past MAX_PAIRS the expansion is refused."""

from __future__ import annotations

import hashlib
import json

import pytest

from purgecache import expansion
from purgecache.expansion import TooManyPairs, expand
from purgecache.selectors import Selector, literal_prefix
from purgecache.storage.selectors import Candidate

SELECTOR = Selector("proj-a/*", "level-3-*")


def test_candidates_merge_per_pair_sorted_with_their_sources() -> None:
    """One pair per (pool, cache), sorted; workers counted once; sources in a fixed order;
    unmatched candidates dropped."""
    found = expand(
        SELECTOR,
        [
            Candidate("proj-a/win", "level-3-b", "requests", None, 0),
            Candidate("proj-a/linux", "level-3-a", "history", None, 0),
            Candidate("proj-a/linux", "level-3-a", "inventory", "local/w1", 10),
            Candidate("proj-a/linux", "level-3-a", "inventory", "local/w2", 5),
            Candidate("proj-a/linux", "level-1", "inventory", "local/w1", 99),
            Candidate("proj-b/linux", "level-3-a", "inventory", "local/w1", 7),
        ],
    )
    wire = found.to_wire(True, 20, None)
    pairs = [
        (p.worker_pool_id, p.cache_name, len(p.workers), p.bytes, p.known_from) for p in found.pairs
    ]
    assert pairs == [
        ("proj-a/linux", "level-3-a", 2, 15, ("inventory", "history")),
        ("proj-a/win", "level-3-b", 0, 0, ("requests",)),
    ]
    assert wire["pairs"] == [pair.to_wire() for pair in found.pairs]
    assert wire["totals"] == {"pairs": 2, "pools": 2, "workers": 2, "bytes": 15}
    assert found.pools == ["proj-a/linux", "proj-a/win"]


def test_the_digest_is_sha256_of_the_sorted_pairs_as_compact_json() -> None:
    """What a client may recompute: sha256 over `[[pool, cache], ...]`, no spaces, UTF-8."""
    found = expand(SELECTOR, [Candidate("proj-a/linux", "level-3-é", "history", None, 0)])
    canonical = json.dumps(
        [["proj-a/linux", "level-3-é"]], separators=(",", ":"), ensure_ascii=False
    )
    expected = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert found.digest == f"sha256:{expected}"
    assert expand(SELECTOR, []).digest == "sha256:" + hashlib.sha256(b"[]").hexdigest()


def test_an_expansion_past_the_bound_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """More matched pairs than MAX_PAIRS: TooManyPairs saying to narrow the selector."""
    monkeypatch.setattr(expansion, "MAX_PAIRS", 2)
    candidates = [Candidate("proj-a/linux", f"level-3-{i}", "history", None, 0) for i in range(3)]
    with pytest.raises(TooManyPairs, match="narrow"):
        expand(SELECTOR, candidates)


def test_the_literal_prefix_stops_at_the_first_special_character() -> None:
    """What a store may narrow its candidates by."""
    assert literal_prefix("proj-a/*") == "proj-a/"
    assert literal_prefix("proj-?/x") == "proj-"
    assert literal_prefix("a\\*b") == "a"
    assert literal_prefix("exact/pool") == "exact/pool"


def test_a_selector_pairs_purge_created_event_names_the_selector() -> None:
    """The `purge.created` body of a pair a selector purged carries the selector; a purge of
    one named cache has none."""
    from purgecache.events.model import created
    from purgecache.model import Provenance, PurgeRequest

    request = PurgeRequest("proj-a/linux", "level-3-a", 1, 2)
    plain = Provenance("createPurge", "admin")
    chosen = plain._replace(selector_pool_pattern="proj-a/*", selector_cache_pattern="level-3-*")
    body = json.loads(created(request, chosen).body)
    assert body["selector"] == {"workerPoolPattern": "proj-a/*", "cacheNamePattern": "level-3-*"}
    assert "selector" not in json.loads(created(request, plain).body)

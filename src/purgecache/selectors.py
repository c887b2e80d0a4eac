"""Selectors: which (worker pool, cache name) pairs a bulk purge means, and the one matcher that
the service, the client and the agent all use to decide it.

A selector is two patterns, one for pool ids and one for cache names. Only two characters are
special: `*` matches any run of characters (none included) and `?` exactly one; in a pool
pattern neither crosses the `/` between provisioner and worker type, so `proj-a/*` never
reaches `proj-b/x`. A backslash takes the next `*`, `?` or `\\` literally. Nothing else is
special: `[`, `{` and friends are ordinary characters, as they may be in cache names. `**` is
refused rather than given a meaning (in other tools it crosses separators, and a purge that
reaches further than its author thought is the failure this design guards against), as is a
backslash before any other character or at the end.

Bare names are never patterns: a selector exists only where a caller asked for one (the CLI's
`--match`), so `purgecache purge POOL 'a*'` keeps purging the literal cache `a*`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass

SPECIAL = "*?\\"


class PatternError(ValueError):
    """A pattern the selector syntax does not allow; the message says why."""


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str, *, within_segment: bool = False) -> re.Pattern[str]:
    """The regular expression (use `fullmatch`) a pattern stands for; `within_segment`: `*`
    and `?` do not match `/` (pool patterns)."""
    any_run, one = (r"[^/]*", r"[^/]") if within_segment else (r".*", r".")
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            following = pattern[index + 1 : index + 2]
            if following == "" or following not in SPECIAL:
                raise PatternError(
                    f"in {pattern!r}: a backslash escapes only *, ? and \\ "
                    f"(at character {index + 1})"
                )
            parts.append(re.escape(following))
            index += 2
            continue
        if char == "*":
            if pattern[index + 1 : index + 2] == "*":
                raise PatternError(f"in {pattern!r}: ** is not supported (use one *)")
            parts.append(any_run)
        elif char == "?":
            parts.append(one)
        else:
            parts.append(re.escape(char))
        index += 1
    return re.compile("".join(parts), re.DOTALL)


def is_literal(pattern: str) -> bool:
    """Whether a pattern matches exactly one string (it has no unescaped `*` or `?`)."""
    index = 0
    while index < len(pattern):
        if pattern[index] == "\\":
            index += 2
            continue
        if pattern[index] in "*?":
            return False
        index += 1
    return True


def unescape(pattern: str) -> str:
    """The one string a literal pattern matches."""
    compile_pattern(pattern)  # refuse what the syntax does not allow
    return re.sub(r"\\(.)", r"\1", pattern, flags=re.DOTALL)


@dataclass(frozen=True)
class Selector:
    """A pool pattern and a cache-name pattern, checked when made."""

    pool_pattern: str
    cache_pattern: str

    def __post_init__(self) -> None:
        compile_pattern(self.pool_pattern, within_segment=True)
        compile_pattern(self.cache_pattern)

    def matches_pool(self, worker_pool_id: str) -> bool:
        """Whether the pool pattern matches `worker_pool_id`."""
        pattern = compile_pattern(self.pool_pattern, within_segment=True)
        return pattern.fullmatch(worker_pool_id) is not None

    def matches(self, worker_pool_id: str, cache_name: str) -> bool:
        """Whether the selector means the cache `cache_name` of `worker_pool_id`."""
        return (
            self.matches_pool(worker_pool_id)
            and compile_pattern(self.cache_pattern).fullmatch(cache_name) is not None
        )

    def expand(self, known: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The known (pool, cache name) pairs the selector matches, sorted, each once."""
        return sorted({pair for pair in known if self.matches(*pair)})


def literal_prefix(pattern: str) -> str:
    """The characters every match starts with: the pattern up to its first special character
    (a store may narrow its candidates by it; the matcher still decides)."""
    for index, char in enumerate(pattern):
        if char in SPECIAL:
            return pattern[:index]
    return pattern


def pairs_digest(pairs: list[tuple[str, str]]) -> str:
    """`sha256:<hex>` of the sorted (pool, cache name) pairs, serialised canonically (a JSON
    array of two-element arrays, no spaces, UTF-8): what a dry run shows and an apply quotes
    back to prove it saw the same set."""
    canonical = json.dumps(sorted(pairs), separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()

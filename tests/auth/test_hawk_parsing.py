"""The fast-path Hawk header parser agrees with the full grammar on every header we know."""

from __future__ import annotations

import pytest

from purgecache.auth import hawk
from purgecache.auth.hawk import AuthFailure

from support.hawk_vectors import load_vectors

VECTORS = load_vectors()
RECORDED = {c["request"]["authorization"] for c in (VECTORS or {"cases": []})["cases"]}
HEADERS = [
    *sorted(RECORDED - {None}),
    'Hawk id="a", ts="1", nonce="n", mac="m"',
    'Hawk id="a", ts="1", nonce="n", hash="h", ext="e", mac="m"',
    'Hawk mac="m", hash="h", id="a", ts="1", nonce="n"',
    'Hawk mac="m", hash="h", id="a", ts="1x", nonce="n", ext="e"',
    'Hawk mac="m", hash="h", id="a", ts="1", nonce="n", ext="e", ext="e"',
    'Hawk mac="m", hash="", id="a", ts="1", nonce="n", ext="e"',
    'Hawk id="a, ts=\\"1", ts="1", nonce="n", mac="m"',
    'hawk id="a", ts="1", nonce="n", mac="m"',
]


def _outcome(parse: object, header: str) -> object:
    try:
        return parse(header)  # type: ignore[operator]
    except AuthFailure as failure:
        return f"failure: {failure}"


@pytest.mark.parametrize("header", HEADERS)
def test_fast_path_matches_full_parser(header: str) -> None:
    """parse_header (with its fast layouts) gives exactly what the full parser gives."""
    assert _outcome(hawk.parse_header, header) == _outcome(hawk._parse_header_fully, header)


@pytest.mark.parametrize("key", ["", "k", "x" * 64, "y" * 65, "ünïcode-key", "z" * 300])
def test_cached_hmac_equals_the_standard_library(key: str) -> None:
    """The precomputed-pad HMAC gives the same bytes as hmac.digest, long keys included."""
    import hashlib
    import hmac

    for message in (b"", b"abc", b"m" * 1000):
        expected = hmac.digest(key.encode(), message, hashlib.sha256)
        assert hawk.hmac_sha256(key, message) == expected

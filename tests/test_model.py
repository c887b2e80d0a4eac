"""Domain values: time formats, `since` parsing, durations, pool ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from purgecache.model import format_time, is_worker_pool_id, parse_duration, parse_since

OCT_7 = 1570463161000  # 2019-10-07T15:46:01.000Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-10-07T15:46:01.123Z", OCT_7 + 123),
        ("2019-10-07T15:46:01.1239Z", OCT_7 + 123),
        ("2019-10-07T15:46:01Z", OCT_7),
        ("2019-10-07T17:46:01+02:00", OCT_7),
        ("2019-10-07T13:46:01-0200", OCT_7),
        ("2019-10-07T15:46:01", OCT_7),
        ("2019-10-07", OCT_7 - (15 * 3600 + 46 * 60 + 1) * 1000),
        ("Mon Oct 07 2019 15:46:01 GMT+0000 (Coordinated Universal Time)", OCT_7),
        ("Mon Oct 07 2019 17:46:01 GMT+0200 (Central European Summer Time)", OCT_7),
        ("Mon, 07 Oct 2019 15:46:01 GMT", OCT_7),
        ("1969-12-31T23:59:59.999Z", -1),
    ],
)
def test_parse_since_accepts_client_forms(text: str, expected: int) -> None:
    """Each form real clients send parses to the same instant JavaScript would give."""
    assert parse_since(text) == expected


@pytest.mark.parametrize(
    "text", ["", "abc", "now", "2019-13-01", "2019-10-32", "1970-01-01T00:00:00.000Z", "Mon"]
)
def test_parse_since_rejects_invalid_dates_and_the_epoch(text: str) -> None:
    """Unparsable values and the exact epoch raise ValueError (400 upstream too)."""
    with pytest.raises(ValueError, match="Invalid Date"):
        parse_since(text)


def test_format_time_has_three_fraction_digits_and_z() -> None:
    """`before` is written as JavaScript's toISOString does."""
    assert format_time(OCT_7 + 5) == "2019-10-07T15:46:01.005Z"
    assert format_time(0) == "1970-01-01T00:00:00.000Z"


def test_format_time_is_exact_whatever_was_formatted_before() -> None:
    """The kept text of the last second never leaks into another second's time: every
    value, asked in any order (same second, next second, back, before the epoch), matches
    datetime's own rendering."""
    start = datetime(1970, 1, 1, tzinfo=UTC)
    moments = [
        OCT_7 + 5,
        OCT_7 + 999,
        OCT_7 + 1000,
        OCT_7 + 5,
        -1,
        0,
        999,
        1000,
        -1000,
        253402300799999,
    ]
    for ms in moments + moments[::-1]:
        expected = (start + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        assert format_time(ms) == expected, ms


def test_format_then_parse_round_trips() -> None:
    """A `before` fed back as `since` denotes the same millisecond."""
    assert parse_since(format_time(OCT_7 + 999)) == OCT_7 + 999


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("30d", 30 * 86_400_000),
        ("12h", 43_200_000),
        ("1h30m", 5_400_000),
        ("90s", 90_000),
        ("500ms", 500),
        ("2w", 14 * 86_400_000),
    ],
)
def test_parse_duration(text: str, ms: int) -> None:
    """Retention and cache durations accept unit suffixes."""
    assert parse_duration(text) == ms


@pytest.mark.parametrize("text", ["", "30", "d", "-1d", "0s", "1y", "1 day"])
def test_parse_duration_rejects_nonsense(text: str) -> None:
    """Durations without a unit, zero or unknown units are refused."""
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("pool", "valid"),
    [
        ("a/b", True),
        ("A-_9/x", True),
        (f"{'a' * 38}/{'b' * 38}", True),
        (f"{'a' * 39}/b", False),
        ("a", False),
        ("a/b/c", False),
        ("a/b\n", False),
        ("/b", False),
        ("a/", False),
        ("a.b/c", False),
    ],
)
def test_worker_pool_id_pattern(pool: str, valid: bool) -> None:
    """Pool ids are two 1-38 character identifiers around one slash, fully matched."""
    assert is_worker_pool_id(pool) is valid

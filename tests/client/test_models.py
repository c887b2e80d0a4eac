"""The typed results: reading the wire strictly, writing it back exactly, pool id helpers."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from purgecache.client import (
    OpenAllPurgeRequestsList,
    OpenPurgeRequestList,
    PurgeCacheRequest,
    PurgeCacheRequestsEntry,
    PurgeEvent,
    PurgeHistory,
    Version,
    split_worker_pool_id,
    worker_pool_id,
)

ENTRY = {
    "provisionerId": "proj-a",
    "workerType": "linux",
    "cacheName": "checkouts",
    "before": "2026-05-01T10:00:07.250Z",
}


def test_entry_reads_before_as_an_aware_utc_datetime() -> None:
    """`before` becomes a datetime in UTC, milliseconds kept, and is written back as sent."""
    entry = PurgeCacheRequestsEntry.from_json(ENTRY)
    assert entry.before == datetime(2026, 5, 1, 10, 0, 7, 250000, tzinfo=UTC)
    assert entry.worker_pool_id == "proj-a/linux"
    assert entry.to_json() == ENTRY


def test_offsets_are_converted_to_utc() -> None:
    """A `before` with an offset (another deployment's choice) still compares correctly."""
    entry = PurgeCacheRequestsEntry.from_json({**ENTRY, "before": "2026-05-01T12:00:00+02:00"})
    assert entry.before == datetime(2026, 5, 1, 10, tzinfo=UTC)
    assert entry.before.tzinfo is UTC


@pytest.mark.parametrize(
    "bad",
    [
        {**ENTRY, "cacheName": 5},
        {k: v for k, v in ENTRY.items() if k != "workerType"},
        {**ENTRY, "before": "yesterday"},
        [ENTRY],
    ],
)
def test_malformed_entries_are_value_errors(bad: Any) -> None:
    """A missing field, a wrong type or a bad time is a ValueError, not a half-built result."""
    with pytest.raises(ValueError):
        PurgeCacheRequestsEntry.from_json(bad)


def test_lists_round_trip() -> None:
    """Both list answers read and write the API's exact shape; an empty token means the end."""
    assert OpenPurgeRequestList.from_json({"requests": [ENTRY]}).to_json() == {"requests": [ENTRY]}
    page = OpenAllPurgeRequestsList.from_json({"requests": [ENTRY], "continuationToken": "t"})
    assert page.continuation_token == "t" and page.to_json()["continuationToken"] == "t"
    last = OpenAllPurgeRequestsList.from_json({"requests": [], "continuationToken": ""})
    assert last.continuation_token is None and "continuationToken" not in last.to_json()
    with pytest.raises(ValueError):
        OpenPurgeRequestList.from_json({"requests": "nope"})


def test_results_are_immutable() -> None:
    """Results are frozen: assigning to a field raises."""
    entry = PurgeCacheRequestsEntry.from_json(ENTRY)
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.cache_name = "other"  # type: ignore[misc]
    assert isinstance(OpenPurgeRequestList.from_json({"requests": [ENTRY]}).requests, tuple)


def test_purge_cache_request_is_the_body() -> None:
    """PurgeCacheRequest writes `{"cacheName": ...}`."""
    assert PurgeCacheRequest("x").to_json() == {"cacheName": "x"}


def test_version_tolerates_missing_fields() -> None:
    """A version object lacking fields reads them as empty strings."""
    assert Version.from_json({"version": "1.0"}) == Version("1.0", "", "", "")


def test_worker_pool_id_helpers_convert_both_ways() -> None:
    """`worker_pool_id` and `split_worker_pool_id` are inverses on valid ids."""
    assert worker_pool_id("proj-a", "linux") == "proj-a/linux"
    assert split_worker_pool_id("proj-a/linux") == ("proj-a", "linux")


@pytest.mark.parametrize("pool", ["a", "a/b/c", "a/", "/b", "a b/c", "a/b\n", "x" * 39 + "/b"])
def test_invalid_worker_pool_ids_are_refused(pool: str) -> None:
    """Ids outside Taskcluster's identifier rules are ValueErrors, whichever way."""
    with pytest.raises(ValueError):
        split_worker_pool_id(pool)
    with pytest.raises(ValueError):
        worker_pool_id(*pool.partition("/")[::2])


def test_since_datetimes_become_api_times() -> None:
    """An aware datetime in any zone is sent as UTC with milliseconds and `Z`."""
    from purgecache.client._calls import purge_requests

    moment = datetime(2026, 1, 1, 13, 30, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    call = purge_requests("a/b", moment)
    assert call.query == (("since", "2026-01-01T12:30:00.123Z"),)
    assert call.route == "purge-cache/a%2Fb"


EVENT = {
    "eventId": "41",
    "workerPoolId": "proj-a/linux",
    "cacheName": "checkouts",
    "time": "2026-05-01T10:00:07.250Z",
    "endpoint": "createPurge",
    "untilApplied": True,
    "clientId": "alice",
    "sourceIp": "192.0.2.1",
    "signedSpelling": "%2F",
    "userAgent": "purgecache/0.1",
    "reason": "corrupt",
    "link": "https://bugs.example/1",
}


def test_history_pages_round_trip_and_absent_facts_stay_absent() -> None:
    """A history page and its events are written back exactly as read; an event with only
    the required fields (createPurge's answer has no id) has None for the rest."""
    page = {"events": [EVENT], "total": 9, "continuationToken": "abc"}
    assert PurgeHistory.from_json(page).to_json() == page
    bare = {k: EVENT[k] for k in ("workerPoolId", "cacheName", "time", "endpoint")}
    event = PurgeEvent.from_json({**bare, "untilApplied": False})
    assert (event.event_id, event.client_id, event.reason) == (None, None, None)
    assert event.to_json() == {**bare, "untilApplied": False}
    with pytest.raises(ValueError):
        PurgeHistory.from_json({"events": [EVENT], "total": "9"})
    with pytest.raises(ValueError):
        PurgeEvent.from_json({**EVENT, "reason": 5})


def test_history_events_say_whether_the_purge_is_kept_until_applied() -> None:
    """`until_applied` reads the event's `untilApplied`; an event of a service that does
    not record the policy reads as the normal one."""
    assert PurgeEvent.from_json(EVENT).until_applied is True
    assert PurgeEvent.from_json({**EVENT, "untilApplied": False}).until_applied is False
    without = {k: v for k, v in EVENT.items() if k != "untilApplied"}
    assert PurgeEvent.from_json(without).until_applied is False

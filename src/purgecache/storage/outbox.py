"""The event outbox as both backends write and read it: event rows, leases, delivery results
and the operator's view (the backends differ in their placeholder and in how a claim locks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from purgecache.events.model import OutboxEvent

EVENT_COLUMNS = "event_id, kind, worker_pool_id, cache_name, created_at, body"
# Events are kept only while some target is registered (deliveries fan out to the targets
# of the moment, so an event written without one would never be delivered): a service with
# no --amqp-url and no --webhook writes no outbox rows. The same event id twice (a replayed
# report, a second expiry run) is stored once.
HAS_TARGETS = "SELECT 1 FROM event_targets LIMIT 1"
INSERT_EVENT = (
    f"INSERT INTO event_outbox ({EVENT_COLUMNS}) SELECT {{marks}} "
    f"WHERE EXISTS ({HAS_TARGETS}) ON CONFLICT (event_id) DO NOTHING"
)
# Due deliveries of one target, oldest first: not failed, next attempt due, lease run out.
DUE = (
    "SELECT seq FROM event_deliveries WHERE target = {m} AND failed_at IS NULL "
    "AND next_attempt_at <= {m} AND lease_until <= {m} ORDER BY next_attempt_at, seq LIMIT {m}"
)
LEASE = (
    "UPDATE event_deliveries SET lease_until = {m} WHERE target = {m} AND seq IN ({due}) "
    "RETURNING seq, attempts"
)
CLAIMED = (
    "SELECT seq, event_id, kind, worker_pool_id, cache_name, created_at, body "
    "FROM event_outbox WHERE seq IN ({seqs}) ORDER BY seq"
)
DELIVERED = "DELETE FROM event_deliveries WHERE target = {m} AND seq = {m}"
FAILED = (
    "UPDATE event_deliveries SET attempts = {m}, next_attempt_at = {m}, lease_until = 0, "
    "failed_at = {m}, last_error = {m} WHERE target = {m} AND seq = {m}"
)
# Filters of `events retry`/`drop`: a target, an event id, or every one (NULL).
_MATCH = "((CAST({m} AS text) IS NULL OR target = {m}) AND (CAST({m} AS text) IS NULL OR seq IN "
_MATCH += "(SELECT seq FROM event_outbox WHERE event_id = {m})))"
RETRY = (
    "UPDATE event_deliveries SET failed_at = NULL, next_attempt_at = 0, lease_until = 0, "
    f"attempts = 0 WHERE failed_at IS NOT NULL AND {_MATCH}"
)
# Failed deliveries only, unless the first parameter is 1 (pending ones too).
DROP = (
    "DELETE FROM event_deliveries WHERE (CAST({m} AS integer) = 1 OR failed_at IS NOT NULL) "
    f"AND {_MATCH}"
)
LISTING = (
    "SELECT o.event_id, o.kind, o.worker_pool_id, o.cache_name, o.created_at, d.target, "
    "d.attempts, d.next_attempt_at, d.failed_at, d.last_error FROM event_deliveries d "
    "JOIN event_outbox o ON o.seq = d.seq ORDER BY d.seq, d.target LIMIT {m}"
)
DEPTH = (
    "SELECT count(*) FILTER (WHERE failed_at IS NULL), count(*) FILTER (WHERE failed_at IS "
    "NOT NULL) FROM event_deliveries"
)
# Delivered events are kept (their ids dedupe replays) as long as the history keeps events.
PRUNE = (
    "DELETE FROM event_outbox WHERE created_at < {m} "
    "AND NOT EXISTS (SELECT 1 FROM event_deliveries d WHERE d.seq = event_outbox.seq)"
)
# Registering only adds: a target leaves only when an operator removes it (`purgecache events
# targets --remove`), with its undelivered deliveries; {m} says "is one of the targets given".
ADD_TARGET = "INSERT INTO event_targets (target) VALUES ({m}) ON CONFLICT (target) DO NOTHING"
TARGETS = "SELECT target FROM event_targets ORDER BY target"
REMOVE_TARGETS = "DELETE FROM event_targets WHERE target {m}"
DROP_DELIVERIES = "DELETE FROM event_deliveries WHERE target {m}"


def match_args(target: str | None, event_id: str | None) -> tuple[str | None, ...]:
    """The parameters of `_MATCH`."""
    return (target, target, event_id, event_id)


def sql(template: str, mark: str, **parts: str) -> str:
    """A statement with the backend's placeholder."""
    return template.format(m=mark, marks="{marks}", **parts)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery leased to this process: the event and how many attempts came before."""

    seq: int
    event: OutboxEvent
    attempts: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivery not yet made, as `purgecache events` lists it."""

    event_id: str
    kind: str
    worker_pool_id: str
    cache_name: str
    created_at: int
    target: str
    attempts: int
    next_attempt_at: int
    failed_at: int | None
    last_error: str | None


def claimed(events: list[tuple[Any, ...]], attempts: dict[int, int]) -> list[Claimed]:
    """The leased deliveries from `CLAIMED` rows and the leased rows' attempts."""
    return [Claimed(int(row[0]), _event(row), attempts[int(row[0])]) for row in events]


def _event(row: tuple[Any, ...]) -> OutboxEvent:
    return OutboxEvent(
        str(row[1]), str(row[2]), str(row[3]), str(row[4]), int(row[5]), bytes(row[6])
    )


def delivery(row: tuple[Any, ...]) -> Delivery:
    """A `LISTING` row."""
    return Delivery(*row)

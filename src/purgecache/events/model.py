"""Event values, bodies, AMQP routing keys, webhook signatures and retry delays (no I/O).

An event's id is random for a purge (each purge is news) and derived from what it describes
for a receipt or an expiry, so that replaying a report or a second expiry run stores the same
event once (the outbox ignores an id it already holds).
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
import uuid
from typing import Any, NamedTuple

import orjson

from purgecache.model import CacheReceipt, Provenance, PurgeRequest, WorkerReport, format_time

CREATED = "purge.created"
APPLIED = "purge.applied"
EXPIRED = "purge.expired"
CONVERGED = "purge.converged"
CANCELLED = "purge.cancelled"
KINDS = (CREATED, APPLIED, CONVERGED, EXPIRED, CANCELLED)
SIGNATURE_HEADER = "X-Purgecache-Signature"
_CACHE_KEY = re.compile(r"[A-Za-z0-9_-]{1,100}")
_NAMESPACE = uuid.UUID("5b0c1f2e-7a43-4e0b-9c51-0d6f2b8a9e17")  # fixed: ids must not change


class OutboxEvent(NamedTuple):
    """An event as the outbox stores it: its id, kind, key, time and JSON body."""

    event_id: str
    kind: str
    worker_pool_id: str
    cache_name: str
    created_at: int  # ms since the epoch
    body: bytes


def _body(event_id: str, kind: str, pool: str, cache: str, now: int, **extra: Any) -> bytes:
    provisioner_id, _, worker_type = pool.partition("/")
    fields = {
        "eventId": event_id,
        "event": kind,
        "time": format_time(now),
        "workerPoolId": pool,
        "provisionerId": provisioner_id,
        "workerType": worker_type,
        "cacheName": cache,
    }
    return orjson.dumps(fields | {k: v for k, v in extra.items() if v is not None})


def _event(event_id: str, kind: str, pool: str, cache: str, now: int, **extra: Any) -> OutboxEvent:
    return OutboxEvent(
        event_id, kind, pool, cache, now, _body(event_id, kind, pool, cache, now, **extra)
    )


def created(request: PurgeRequest, origin: Provenance) -> OutboxEvent:
    """`purge.created`: a purge was accepted (who asked, why)."""
    return _event(
        str(uuid.uuid4()),
        CREATED,
        request.worker_pool_id,
        request.cache_name,
        request.before,
        before=format_time(request.before),
        clientId=origin.client_id,
        reason=origin.reason,
        link=origin.link,
        selector=None
        if origin.selector_pool_pattern is None
        else {
            "workerPoolPattern": origin.selector_pool_pattern,
            "cacheNamePattern": origin.selector_cache_pattern,
        },
    )


def applied(report: WorkerReport, receipt: CacheReceipt, now: int) -> OutboxEvent:
    """`purge.applied`: one worker's receipt for one cache (the same receipt, the same id)."""
    key = (report.worker_pool_id, report.worker_group, report.worker_id, receipt.cache_name)
    event_id = _derived_id(APPLIED, *key, str(receipt.honoured_before))
    return _event(
        event_id,
        APPLIED,
        report.worker_pool_id,
        receipt.cache_name,
        now,
        before=format_time(receipt.honoured_before),
        workerGroup=report.worker_group,
        workerId=report.worker_id,
        instancesDeleted=receipt.instances_deleted,
        bytesFreed=receipt.bytes_freed,
        failures=receipt.failures,
        inUse=receipt.in_use,
    )


def expired(pool: str, cache: str, before: int, now: int) -> OutboxEvent:
    """`purge.expired`: a purge request reached the end of its retention and was removed."""
    event_id = _derived_id(EXPIRED, pool, cache, str(before))
    return _event(event_id, EXPIRED, pool, cache, now, before=format_time(before))


def converged(pool: str, cache: str, before: int, now: int, workers: int) -> OutboxEvent:
    """`purge.converged`: every worker active on the pool had applied the purge when the
    expiry job looked (`workers` of them); once per purge (the id derives from it)."""
    event_id = _derived_id(CONVERGED, pool, cache, str(before))
    return _event(
        event_id, CONVERGED, pool, cache, now, before=format_time(before), activeWorkers=workers
    )


def cancelled(pool: str, cache: str, before: int, now: int, origin: Provenance) -> OutboxEvent:
    """`purge.cancelled`: an open purge was withdrawn (`cancelPurge`): who, and why."""
    event_id = _derived_id(CANCELLED, pool, cache, str(before))
    return _event(
        event_id,
        CANCELLED,
        pool,
        cache,
        now,
        before=format_time(before),
        clientId=origin.client_id,
        reason=origin.reason,
    )


def _derived_id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "\0".join(parts)))


def routing_key(kind: str, worker_pool_id: str, cache_name: str) -> str:
    """`<event>.<provisionerId>.<workerType>.<cacheKey>`; a cache name that is not a plain
    word (dots, slashes, over 100 characters...) is `_`."""
    provisioner_id, _, worker_type = worker_pool_id.partition("/")
    cache_key = cache_name if _CACHE_KEY.fullmatch(cache_name) else "_"
    return f"{kind}.{provisioner_id}.{worker_type}.{cache_key}"


def signature(secret: bytes, body: bytes, unix_time: int) -> str:
    """The `X-Purgecache-Signature` value: `t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">`."""
    mac = hmac.new(secret, b"%d." % unix_time + body, hashlib.sha256).hexdigest()
    return f"t={unix_time},v1={mac}"


def retry_delay_ms(attempts: int, cap_ms: int, base_ms: int = 1000) -> int:
    """Exponential backoff with jitter: a random delay between half and all of
    min(cap, base·2^(attempts-1)), so that processes retrying together spread out."""
    ceiling = min(cap_ms, base_ms * 2 ** min(max(attempts - 1, 0), 30))
    return random.randint(ceiling // 2, ceiling)

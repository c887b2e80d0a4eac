"""Typed, immutable values of the purge-cache API: the seed's types, the Python way.

Every result knows how to read itself from the wire (`from_json`, strict: a field of the wrong
type is a ValueError) and how to write itself back (`to_json`, the exact wire form).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from purgecache.model import format_time, is_worker_pool_id, to_ms


def worker_pool_id(provisioner_id: str, worker_type: str) -> str:
    """`provisionerId/workerType`, checked against Taskcluster's identifier rules."""
    pool = f"{provisioner_id}/{worker_type}"
    if not is_worker_pool_id(pool):
        raise ValueError(
            f"invalid worker pool ({provisioner_id!r}, {worker_type!r}): each part must be "
            "1 to 38 of A-Z a-z 0-9 _ -"
        )
    return pool


def split_worker_pool_id(pool: str) -> tuple[str, str]:
    """`(provisionerId, workerType)` of a worker pool id such as `proj-a/linux`."""
    if not is_worker_pool_id(pool):
        raise ValueError(
            f"invalid worker pool id {pool!r}: expected provisionerId/workerType, each "
            "1 to 38 of A-Z a-z 0-9 _ -"
        )
    provisioner_id, _, worker_type = pool.partition("/")
    return provisioner_id, worker_type


def format_datetime(moment: datetime) -> str:
    """An aware datetime as the API writes times: UTC, milliseconds, `Z`."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a naive datetime is ambiguous, give it a time zone: {moment!r}")
    return format_time(to_ms(moment))


def parse_datetime(text: str) -> datetime:
    """An API time (RFC 3339) as an aware datetime in UTC."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _field(data: Mapping[str, object], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise ValueError(f"field {name!r} should be a string, got {value!r}")
    return value


def _object(data: object) -> Mapping[str, object]:
    if not isinstance(data, Mapping):
        raise ValueError(f"expected a JSON object, got {data!r}")
    return data


def _entries(data: Mapping[str, object]) -> tuple[PurgeCacheRequestsEntry, ...]:
    entries = data.get("requests")
    if not isinstance(entries, list):
        raise ValueError(f"field 'requests' should be a list, got {entries!r}")
    return tuple(PurgeCacheRequestsEntry.from_json(entry) for entry in entries)


@dataclass(frozen=True, slots=True)
class PurgeCacheRequest:
    """Input of `purgeCache`: which cache to purge (`v1/purge-cache-request.json`)."""

    cache_name: str

    def to_json(self) -> dict[str, str]:
        """The request body."""
        return {"cacheName": self.cache_name}


@dataclass(frozen=True, slots=True)
class PurgeCacheRequestsEntry:
    """One open purge request: caches `cache_name` of the pool created before `before` go."""

    provisioner_id: str
    worker_type: str
    cache_name: str
    before: datetime  # aware, UTC

    @property
    def worker_pool_id(self) -> str:
        """`provisionerId/workerType`."""
        return f"{self.provisioner_id}/{self.worker_type}"

    @classmethod
    def from_json(cls, data: object) -> PurgeCacheRequestsEntry:
        """Read one entry of a `requests` list."""
        fields = _object(data)
        return cls(
            _field(fields, "provisionerId"),
            _field(fields, "workerType"),
            _field(fields, "cacheName"),
            parse_datetime(_field(fields, "before")),
        )

    def to_json(self) -> dict[str, str]:
        """The entry as the API sends it."""
        return {
            "provisionerId": self.provisioner_id,
            "workerType": self.worker_type,
            "cacheName": self.cache_name,
            "before": format_datetime(self.before),
        }


@dataclass(frozen=True, slots=True)
class OpenPurgeRequestList:
    """What `purgeRequests` returns: the open purge requests of one worker pool."""

    requests: tuple[PurgeCacheRequestsEntry, ...]

    @classmethod
    def from_json(cls, data: object) -> OpenPurgeRequestList:
        """Read a `purgeRequests` answer."""
        return cls(_entries(_object(data)))

    def to_json(self) -> dict[str, object]:
        """The answer as the API sends it."""
        return {"requests": [entry.to_json() for entry in self.requests]}


@dataclass(frozen=True, slots=True)
class OpenAllPurgeRequestsList:
    """One page of `allPurgeRequests`; `continuation_token` is None on the last page."""

    requests: tuple[PurgeCacheRequestsEntry, ...]
    continuation_token: str | None = None

    @classmethod
    def from_json(cls, data: object) -> OpenAllPurgeRequestsList:
        """Read an `allPurgeRequests` answer (an empty token, as v19 sends, means the end)."""
        fields = _object(data)
        token = fields.get("continuationToken")
        if token is not None and not isinstance(token, str):
            raise ValueError(f"field 'continuationToken' should be a string, got {token!r}")
        return cls(_entries(fields), token or None)

    def to_json(self) -> dict[str, object]:
        """The page as the API sends it."""
        answer: dict[str, object] = {"requests": [entry.to_json() for entry in self.requests]}
        if self.continuation_token is not None:
            answer["continuationToken"] = self.continuation_token
        return answer


@dataclass(frozen=True, slots=True)
class Ping:
    """What `ping` returns: the service is alive, up for `uptime` seconds."""

    alive: bool
    uptime: float

    @classmethod
    def from_json(cls, data: object) -> Ping:
        """Read a `ping` answer."""
        fields = _object(data)
        alive, uptime = fields.get("alive"), fields.get("uptime")
        if not isinstance(alive, bool) or not isinstance(uptime, int | float):
            raise ValueError(f"expected alive and uptime, got {data!r}")
        return cls(alive, float(uptime))

    def to_json(self) -> dict[str, object]:
        """The answer as the API sends it."""
        return {"alive": self.alive, "uptime": self.uptime}


@dataclass(frozen=True, slots=True)
class Version:
    """What `version` returns: the deployment's Dockerflow version object."""

    version: str
    commit: str
    source: str
    build: str

    @classmethod
    def from_json(cls, data: object) -> Version:
        """Read a `version` answer (absent fields read as empty)."""
        fields = _object(data)
        values = [fields.get(name, "") for name in ("version", "commit", "source", "build")]
        return cls(*(value if isinstance(value, str) else str(value) for value in values))

    def to_json(self) -> dict[str, str]:
        """The answer as the API sends it."""
        return {
            "version": self.version,
            "commit": self.commit,
            "source": self.source,
            "build": self.build,
        }


def _optional(data: Mapping[str, object], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"field {name!r} should be a string, got {value!r}")
    return value


_EVENT_FACTS = (
    ("client_id", "clientId"),
    ("source_ip", "sourceIp"),
    ("signed_spelling", "signedSpelling"),
    ("user_agent", "userAgent"),
    ("reason", "reason"),
    ("link", "link"),
)


_SELECTOR_KEYS = ("workerPoolPattern", "cacheNamePattern")


@dataclass(frozen=True, slots=True)
class PurgeEvent:
    """One accepted purge as the history keeps it (`v1/purge-event.json`): what, when, through
    which endpoint, by whom, from where, how the request was signed (`%2F` or `slash`), and
    why. `event_id` is None in the answer of `create_purge`."""

    worker_pool_id: str
    cache_name: str
    time: datetime  # aware, UTC: the purge's `before`
    endpoint: str  # `purgeCache` or `createPurge`
    event_id: str | None = None
    client_id: str | None = None
    source_ip: str | None = None
    signed_spelling: str | None = None
    user_agent: str | None = None
    reason: str | None = None
    link: str | None = None
    ended: datetime | None = None  # when it stopped being served (None: open, or unknown)
    end_reason: str | None = None  # converged, expired, superseded or cancelled
    # createSelectorPurge: the selector that produced it (workerPoolPattern, cacheNamePattern)
    selector: Mapping[str, str] | None = None
    # made with the until-applied policy: kept past its retention until every active worker
    # applied it (False from a service that does not say)
    until_applied: bool = False

    @classmethod
    def from_json(cls, data: object) -> PurgeEvent:
        """Read one event."""
        fields = _object(data)
        facts = {name: _optional(fields, key) for name, key in _EVENT_FACTS}
        ended = _optional(fields, "ended")
        selector = fields.get("selector")
        return cls(
            _field(fields, "workerPoolId"),
            _field(fields, "cacheName"),
            parse_datetime(_field(fields, "time")),
            _field(fields, "endpoint"),
            _optional(fields, "eventId"),
            **facts,
            ended=None if ended is None else parse_datetime(ended),
            end_reason=_optional(fields, "endReason"),
            selector=None
            if selector is None
            else {key: _field(_object(selector), key) for key in _SELECTOR_KEYS},
            until_applied=fields.get("untilApplied") is True,
        )

    def to_json(self) -> dict[str, object]:
        """The event as the API sends it."""
        wire: dict[str, object] = {"eventId": self.event_id} if self.event_id is not None else {}
        wire |= {
            "workerPoolId": self.worker_pool_id,
            "cacheName": self.cache_name,
            "time": format_datetime(self.time),
            "endpoint": self.endpoint,
            "untilApplied": self.until_applied,
        }
        facts = [(key, getattr(self, name)) for name, key in _EVENT_FACTS]
        if self.ended is not None:
            facts.append(("ended", format_datetime(self.ended)))
        facts.append(("endReason", self.end_reason))
        wire |= {key: value for key, value in facts if value is not None}
        if self.selector is not None:
            wire["selector"] = dict(self.selector)
        return wire


@dataclass(frozen=True, slots=True)
class PurgeHistory:
    """One page of `listPurgeHistory`, newest first: `total` counts every event the filters
    match; `continuation_token` is None on the last page."""

    events: tuple[PurgeEvent, ...]
    total: int
    continuation_token: str | None = None

    @classmethod
    def from_json(cls, data: object) -> PurgeHistory:
        """Read a `listPurgeHistory` answer."""
        fields = _object(data)
        events, total = fields.get("events"), fields.get("total")
        if not isinstance(events, list) or type(total) is not int:
            raise ValueError(f"expected events and total, got {data!r}")
        token = _optional(fields, "continuationToken")
        return cls(tuple(PurgeEvent.from_json(event) for event in events), total, token)

    def to_json(self) -> dict[str, object]:
        """The page as the API sends it."""
        answer: dict[str, object] = {"events": [event.to_json() for event in self.events]}
        answer["total"] = self.total
        if self.continuation_token is not None:
            answer["continuationToken"] = self.continuation_token
        return answer


@dataclass(frozen=True, slots=True)
class CacheReceipt:
    """A worker's receipt for one cache name (`reportWorkerSync`): the newest purge `before`
    it honoured and what that took."""

    cache_name: str
    honoured_before: datetime  # aware
    instances_deleted: int = 0
    bytes_freed: int = 0
    oldest_deleted_age_ms: int | None = None
    failures: int = 0
    in_use: int = 0

    def to_json(self) -> dict[str, object]:
        """The receipt as the API takes it."""
        receipt: dict[str, object] = {
            "cacheName": self.cache_name,
            "honouredBefore": format_datetime(self.honoured_before),
            "instancesDeleted": self.instances_deleted,
            "bytesFreed": self.bytes_freed,
            "failures": self.failures,
            "inUse": self.in_use,
        }
        if self.oldest_deleted_age_ms is not None:
            receipt["oldestDeletedAgeMs"] = self.oldest_deleted_age_ms
        return receipt


@dataclass(frozen=True, slots=True)
class CacheInventory:
    """What a worker holds of one cache name (`reportWorkerSync`): its copies, their size
    as recorded when each was last released, and when one was last used."""

    cache_name: str
    instances: int = 0
    bytes: int = 0
    last_used: datetime | None = None  # aware

    def to_json(self) -> dict[str, object]:
        """The entry as the API takes it."""
        entry: dict[str, object] = {
            "cacheName": self.cache_name,
            "instances": self.instances,
            "bytes": self.bytes,
        }
        if self.last_used is not None:
            entry["lastUsed"] = format_datetime(self.last_used)
        return entry


_TALLIES = ("activeWorkers", "applied", "appliedInUse", "fetched", "notSeen")


@dataclass(frozen=True, slots=True)
class PurgeConvergence:
    """How far one open purge got on a pool's active workers (`purgeStatus`): counts by
    state, what applying it freed, and the first stragglers as the API sends them."""

    cache_name: str
    before: datetime
    active_workers: int
    applied: int
    applied_in_use: int
    fetched: int
    not_seen: int
    instances_deleted: int
    bytes_freed: int
    stragglers: tuple[Mapping[str, object], ...]
    stragglers_omitted: int
    until_applied: bool = False  # kept past the retention until every active worker applied it

    @classmethod
    def from_json(cls, data: object) -> PurgeConvergence:
        """Read one entry of `purges`."""
        fields = _object(data)
        names = (*_TALLIES, "instancesDeleted", "bytesFreed", "stragglersOmitted")
        counts = [fields.get(name) for name in names]
        stragglers = fields.get("stragglers")
        numbers = [count for count in counts if type(count) is int]
        if len(numbers) != len(names) or not isinstance(stragglers, list):
            raise ValueError(f"expected a purge's convergence, got {data!r}")
        active, applied, in_use, fetched, not_seen, deleted, freed, omitted = numbers
        return cls(
            _field(fields, "cacheName"),
            parse_datetime(_field(fields, "before")),
            active,
            applied,
            in_use,
            fetched,
            not_seen,
            deleted,
            freed,
            tuple(_object(worker) for worker in stragglers),
            omitted,
            fields.get("untilApplied") is True,
        )

    @property
    def converged(self) -> bool:
        """Every active worker applied it."""
        return self.applied == self.active_workers


@dataclass(frozen=True, slots=True)
class PurgeStatus:
    """`purgeStatus`: each open purge of a pool and how far it got; workers heard from since
    `active_since` are active."""

    worker_pool_id: str
    active_since: datetime
    purges: tuple[PurgeConvergence, ...]
    raw: Mapping[str, object]  # the answer as sent (for --json)

    @classmethod
    def from_json(cls, data: object) -> PurgeStatus:
        """Read a `purgeStatus` answer."""
        fields = _object(data)
        purges = fields.get("purges")
        if not isinstance(purges, list):
            raise ValueError(f"expected purges, got {data!r}")
        return cls(
            _field(fields, "workerPoolId"),
            parse_datetime(_field(fields, "activeSince")),
            tuple(PurgeConvergence.from_json(purge) for purge in purges),
            fields,
        )


@dataclass(frozen=True, slots=True)
class PoolCache:
    """A cache name held on a pool (`poolCaches`): how many active workers hold it, their
    copies, total size and latest use."""

    cache_name: str
    workers: int
    instances: int
    bytes: int
    last_used: datetime | None = None

    @classmethod
    def from_json(cls, data: object) -> PoolCache:
        """Read one entry of `caches`."""
        fields = _object(data)
        counts = [fields.get(name) for name in ("workers", "instances", "bytes")]
        numbers = [count for count in counts if type(count) is int]
        if len(numbers) != len(counts):
            raise ValueError(f"expected a pool cache, got {data!r}")
        used = _optional(fields, "lastUsed")
        last_used = None if used is None else parse_datetime(used)
        workers, instances, size = numbers
        return cls(_field(fields, "cacheName"), workers, instances, size, last_used)


@dataclass(frozen=True, slots=True)
class PoolCaches:
    """`poolCaches`: the cache names a pool's active workers hold, by name."""

    worker_pool_id: str
    caches: tuple[PoolCache, ...]
    raw: Mapping[str, object]  # the answer as sent (for --json)

    @classmethod
    def from_json(cls, data: object) -> PoolCaches:
        """Read a `poolCaches` answer."""
        fields = _object(data)
        caches = fields.get("caches")
        if not isinstance(caches, list):
            raise ValueError(f"expected caches, got {data!r}")
        held = tuple(PoolCache.from_json(cache) for cache in caches)
        return cls(_field(fields, "workerPoolId"), held, fields)


@dataclass(frozen=True, slots=True)
class SelectorPair:
    """A (pool, cache name) pair a selector matches (`createSelectorPurge`): the active
    workers holding it, their bytes, and where the service knew it from."""

    worker_pool_id: str
    cache_name: str
    workers: int
    bytes: int
    known_from: tuple[str, ...]

    @classmethod
    def from_json(cls, data: object) -> SelectorPair:
        """Read one entry of `pairs`."""
        fields = _object(data)
        workers, size, known = fields.get("workers"), fields.get("bytes"), fields.get("knownFrom")
        if type(workers) is not int or type(size) is not int or not isinstance(known, list):
            raise ValueError(f"expected a selector pair, got {data!r}")
        pool, cache = _field(fields, "workerPoolId"), _field(fields, "cacheName")
        return cls(pool, cache, workers, size, tuple(str(source) for source in known))


@dataclass(frozen=True, slots=True)
class SelectorPurge:
    """`createSelectorPurge`'s answer: the pairs matched, their totals and digest, and (when
    applied) the purges' `before`."""

    dry_run: bool
    applied: bool
    pairs: tuple[SelectorPair, ...]
    totals: Mapping[str, int]  # pairs, pools, workers, bytes
    digest: str
    confirm_threshold: int
    before: datetime | None
    raw: Mapping[str, object]  # the answer as sent (for --json)

    @classmethod
    def from_json(cls, data: object) -> SelectorPurge:
        """Read a `createSelectorPurge` answer."""
        fields = _object(data)
        pairs, totals = fields.get("pairs"), _object(fields.get("totals"))
        threshold = fields.get("confirmThreshold")
        if not isinstance(pairs, list) or type(threshold) is not int:
            raise ValueError(f"expected a selector purge, got {data!r}")
        before = _optional(fields, "before")
        return cls(
            fields.get("dryRun") is True,
            fields.get("applied") is True,
            tuple(SelectorPair.from_json(pair) for pair in pairs),
            {str(key): int(value) for key, value in totals.items() if type(value) is int},
            _field(fields, "digest"),
            threshold,
            None if before is None else parse_datetime(before),
            fields,
        )


@dataclass(frozen=True, slots=True)
class PoolSelector:
    """An applied selector whose pool pattern matches a pool (`listPoolSelectors`)."""

    worker_pool_pattern: str
    cache_name_pattern: str
    before: datetime
    except_cache_names: tuple[str, ...] = ()  # the pool's caches withdrawn from it

    @classmethod
    def from_json(cls, data: object) -> PoolSelector:
        """Read one entry of `selectors`."""
        fields = _object(data)
        withdrawn = fields.get("exceptCacheNames", [])
        if not isinstance(withdrawn, list) or not all(isinstance(n, str) for n in withdrawn):
            raise ValueError(f"expected exceptCacheNames, got {data!r}")
        return cls(
            _field(fields, "workerPoolPattern"),
            _field(fields, "cacheNamePattern"),
            parse_datetime(_field(fields, "before")),
            tuple(withdrawn),
        )


@dataclass(frozen=True, slots=True)
class PoolSelectors:
    """`listPoolSelectors`: the open selectors matching a pool, newest first."""

    worker_pool_id: str
    selectors: tuple[PoolSelector, ...]

    @classmethod
    def from_json(cls, data: object) -> PoolSelectors:
        """Read a `listPoolSelectors` answer."""
        fields = _object(data)
        selectors = fields.get("selectors")
        if not isinstance(selectors, list):
            raise ValueError(f"expected selectors, got {data!r}")
        found = tuple(PoolSelector.from_json(selector) for selector in selectors)
        return cls(_field(fields, "workerPoolId"), found)


@dataclass(frozen=True, slots=True)
class CancelledSelector:
    """`cancelSelectorPurge`: the selector withdrawn, when it was applied, and the (pool,
    cache name) pairs whose open purge went with it, sorted."""

    worker_pool_pattern: str
    cache_name_pattern: str
    before: datetime
    pairs: tuple[tuple[str, str], ...]

    @classmethod
    def from_json(cls, data: object) -> CancelledSelector:
        """Read a `cancelSelectorPurge` answer."""
        fields = _object(data)
        selector = _object(fields.get("selector"))
        pairs = fields.get("pairs")
        if not isinstance(pairs, list):
            raise ValueError(f"expected pairs, got {data!r}")
        found = [_object(pair) for pair in pairs]
        return cls(
            _field(selector, "workerPoolPattern"),
            _field(selector, "cacheNamePattern"),
            parse_datetime(_field(fields, "before")),
            tuple((_field(pair, "workerPoolId"), _field(pair, "cacheName")) for pair in found),
        )

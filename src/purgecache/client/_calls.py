"""The purge-cache API v1 as data: one `Call` per request, built without any I/O.

A `Call` says which endpoint, method, route (relative to the API base, already encoded),
query and payload, and how to read a successful answer. The sync and async clients send
the same calls; `ClientCore` turns them into signed HTTP requests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Generic, Literal, TypedDict, TypeVar, Unpack
from urllib.parse import quote

from purgecache.client._models import (
    CacheInventory,
    CacheReceipt,
    CancelledSelector,
    OpenAllPurgeRequestsList,
    OpenPurgeRequestList,
    Ping,
    PoolCaches,
    PoolSelectors,
    PurgeCacheRequest,
    PurgeEvent,
    PurgeHistory,
    PurgeStatus,
    SelectorPurge,
    Version,
    format_datetime,
    parse_datetime,
)
from purgecache.model import OBSERVER_HEADER

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

GetEndpoint = Literal[
    "ping",
    "heartbeat",
    "lbheartbeat",
    "version",
    "all_purge_requests",
    "purge_requests",
    "list_purge_history",
    "purge_status",
    "pool_caches",
    "list_pool_selectors",
]
GET_ENDPOINTS: tuple[GetEndpoint, ...] = (
    "ping",
    "heartbeat",
    "lbheartbeat",
    "version",
    "all_purge_requests",
    "purge_requests",
    "list_purge_history",
    "purge_status",
    "pool_caches",
    "list_pool_selectors",
)
# This service's own endpoints (under /ext/), which a Taskcluster deployment does not have.
EXTENSIONS = frozenset(
    {
        "createPurge",
        "cancelPurge",
        "listPurgeHistory",
        "reportWorkerSync",
        "purgeStatus",
        "poolCaches",
        "createSelectorPurge",
        "cancelSelectorPurge",
        "listPoolSelectors",
    }
)


@dataclass(frozen=True, slots=True)
class Call(Generic[T_co]):
    """One API request, before it is signed and sent."""

    endpoint: str  # the API's name for it, e.g. `purgeRequests`
    method: str
    route: str  # relative to the API base, percent-encoded
    parse: Callable[[object], T_co]
    query: tuple[tuple[str, str], ...] = ()
    payload: Mapping[str, object] | None = None
    headers: tuple[tuple[str, str], ...] = ()


def _mapping(data: object) -> Mapping[str, object]:
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {data!r}")
    return MappingProxyType(data)


def _nothing(data: object) -> None:
    return None


def _pool_route(worker_pool_id: str) -> str:
    # Like every current client: the whole id is one path segment, `/` sent as `%2F`.
    return "purge-cache/" + quote(worker_pool_id, safe="")


def ping() -> Call[Ping]:
    """`GET /ping`."""
    return Call("ping", "GET", "ping", Ping.from_json)


def heartbeat() -> Call[Mapping[str, object]]:
    """`GET /__heartbeat__`."""
    return Call("heartbeat", "GET", "__heartbeat__", _mapping)


def lbheartbeat() -> Call[Mapping[str, object]]:
    """`GET /__lbheartbeat__`."""
    return Call("lbheartbeat", "GET", "__lbheartbeat__", _mapping)


def version() -> Call[Version]:
    """`GET /__version__`."""
    return Call("version", "GET", "__version__", Version.from_json)


def purge_cache(worker_pool_id: str, cache_name: str) -> Call[None]:
    """`POST /purge-cache/<workerPoolId>` with `{"cacheName": ...}`."""
    payload = PurgeCacheRequest(cache_name).to_json()
    return Call("purgeCache", "POST", _pool_route(worker_pool_id), _nothing, payload=payload)


def create_purge(
    worker_pool_id: str,
    cache_name: str,
    reason: str | None = None,
    link: str | None = None,
    until_applied: bool | None = None,
) -> Call[PurgeEvent]:
    """`POST /ext/purge/<workerPoolId>` with `{"cacheName": ..., "reason": ..., "link": ...,
    "untilApplied": ...}` (absent values left out)."""
    given = {"cacheName": cache_name, "reason": reason, "link": link}
    payload: dict[str, object] = {k: v for k, v in given.items() if v is not None}
    if until_applied is not None:
        payload["untilApplied"] = until_applied
    route = "ext/purge/" + quote(worker_pool_id, safe="")
    return Call("createPurge", "POST", route, PurgeEvent.from_json, payload=payload)


def _before(data: object) -> datetime:
    return parse_datetime(_mapping(data)["before"])  # type: ignore[arg-type]


def cancel_purge(worker_pool_id: str, cache_name: str, reason: str | None = None) -> Call[datetime]:
    """`POST /ext/cancel/<workerPoolId>` with `{"cacheName": ..., "reason": ...}`; answers
    the withdrawn purge's `before`."""
    payload = {"cacheName": cache_name} | ({} if reason is None else {"reason": reason})
    route = "ext/cancel/" + quote(worker_pool_id, safe="")
    return Call("cancelPurge", "POST", route, _before, payload=payload)


class HistoryQuery(TypedDict, total=False):
    """The filters and paging of `listPurgeHistory` besides the pool (None: not given)."""

    cache_name: str | None
    client_id: str | None
    since: datetime | str | None  # inclusive
    until: datetime | str | None  # exclusive
    continuation_token: str | None
    limit: int | None


def _api_time(moment: datetime | str | None) -> str | None:
    return moment if not isinstance(moment, datetime) else format_datetime(moment)


def list_purge_history(
    worker_pool_id: str | None = None, **query: Unpack[HistoryQuery]
) -> Call[PurgeHistory]:
    """`GET /ext/history?workerPoolId=&cacheName=&clientId=&since=&until=&...`."""
    limit = query.get("limit")
    given = {
        "workerPoolId": worker_pool_id,
        "cacheName": query.get("cache_name"),
        "clientId": query.get("client_id"),
        "since": _api_time(query.get("since")),
        "until": _api_time(query.get("until")),
        "continuationToken": query.get("continuation_token"),
        "limit": None if limit is None else str(limit),
    }
    pairs = tuple((key, value) for key, value in given.items() if value is not None)
    return Call("listPurgeHistory", "GET", "ext/history", PurgeHistory.from_json, pairs)


def report_worker_sync(
    worker_pool_id: str,
    worker_group: str,
    worker_id: str,
    caches: Sequence[CacheReceipt],
    inventory: Sequence[CacheInventory] | None = None,
) -> Call[None]:
    """`POST /ext/report/<workerPoolId>` with the worker's identity, its receipts and (if
    given) its inventory."""
    payload: dict[str, object] = {
        "workerGroup": worker_group,
        "workerId": worker_id,
        "caches": [receipt.to_json() for receipt in caches],
    }
    if inventory is not None:
        payload["inventory"] = [entry.to_json() for entry in inventory]
    route = "ext/report/" + quote(worker_pool_id, safe="")
    return Call("reportWorkerSync", "POST", route, _nothing, payload=payload)


def purge_status(worker_pool_id: str, cache_name: str | None = None) -> Call[PurgeStatus]:
    """`GET /ext/status/<workerPoolId>?cacheName=`."""
    query = () if cache_name is None else (("cacheName", cache_name),)
    route = "ext/status/" + quote(worker_pool_id, safe="")
    return Call("purgeStatus", "GET", route, PurgeStatus.from_json, query)


def pool_caches(worker_pool_id: str) -> Call[PoolCaches]:
    """`GET /ext/caches/<workerPoolId>`."""
    route = "ext/caches/" + quote(worker_pool_id, safe="")
    return Call("poolCaches", "GET", route, PoolCaches.from_json)


def create_selector_purge(
    worker_pool_pattern: str,
    cache_name_pattern: str,
    *,
    dry_run: bool = False,
    digest: str | None = None,
    reason: str | None = None,
    link: str | None = None,
    until_applied: bool | None = None,
) -> Call[SelectorPurge]:
    """`POST /ext/selector-purge` with the selector and, when given, the rest."""
    payload: dict[str, object] = {
        "workerPoolPattern": worker_pool_pattern,
        "cacheNamePattern": cache_name_pattern,
    }
    if dry_run:
        payload["dryRun"] = True
    given = {"digest": digest, "reason": reason, "link": link, "untilApplied": until_applied}
    payload.update((key, value) for key, value in given.items() if value is not None)
    route = "ext/selector-purge"
    return Call("createSelectorPurge", "POST", route, SelectorPurge.from_json, payload=payload)


def cancel_selector_purge(
    worker_pool_pattern: str, cache_name_pattern: str, reason: str | None = None
) -> Call[CancelledSelector]:
    """`POST /ext/selector-cancel` with the selector and, when given, the reason."""
    payload = {"workerPoolPattern": worker_pool_pattern, "cacheNamePattern": cache_name_pattern}
    payload |= {} if reason is None else {"reason": reason}
    route = "ext/selector-cancel"
    return Call("cancelSelectorPurge", "POST", route, CancelledSelector.from_json, payload=payload)


def list_pool_selectors(
    worker_pool_id: str, since: datetime | str | None = None
) -> Call[PoolSelectors]:
    """`GET /ext/selectors/<workerPoolId>?since=`."""
    moment = _api_time(since)
    query = () if moment is None else (("since", moment),)
    route = "ext/selectors/" + quote(worker_pool_id, safe="")
    return Call("listPoolSelectors", "GET", route, PoolSelectors.from_json, query)


def all_purge_requests(
    continuation_token: str | None = None, limit: int | None = None
) -> Call[OpenAllPurgeRequestsList]:
    """`GET /purge-cache/list?continuationToken=&limit=`."""
    query: list[tuple[str, str]] = []
    if continuation_token is not None:
        query.append(("continuationToken", continuation_token))
    if limit is not None:
        query.append(("limit", str(limit)))
    return Call(
        "allPurgeRequests",
        "GET",
        "purge-cache/list",
        OpenAllPurgeRequestsList.from_json,
        tuple(query),
    )


def purge_requests(
    worker_pool_id: str, since: datetime | str | None = None, observer: bool = False
) -> Call[OpenPurgeRequestList]:
    """`GET /purge-cache/<workerPoolId>?since=`; `since` as a datetime or the API's text;
    `observer`: asked by someone looking, not a worker (not counted as fetching it)."""
    query: tuple[tuple[str, str], ...] = ()
    if since is not None:
        query = (("since", since if isinstance(since, str) else format_datetime(since)),)
    headers = ((OBSERVER_HEADER, "1"),) if observer else ()
    route = _pool_route(worker_pool_id)
    return Call(
        "purgeRequests", "GET", route, OpenPurgeRequestList.from_json, query, headers=headers
    )


def get_call(
    endpoint: GetEndpoint,
    worker_pool_id: str | None = None,
    *,
    since: datetime | str | None = None,
    continuation_token: str | None = None,
    limit: int | None = None,
) -> Call[Any]:
    """The call of a GET endpoint by its Python name, with only the arguments it takes."""
    if endpoint in ("purge_requests", "list_pool_selectors"):
        if worker_pool_id is None:
            raise ValueError(f"{endpoint} needs a worker pool id")
        if continuation_token is not None or limit is not None:
            raise ValueError(f"{endpoint} takes no continuation token or limit")
        call = purge_requests if endpoint == "purge_requests" else list_pool_selectors
        return call(worker_pool_id, since)
    if endpoint in ("purge_status", "pool_caches"):
        if worker_pool_id is None:
            raise ValueError(f"{endpoint} needs a worker pool id")
        if since is not None or continuation_token is not None or limit is not None:
            raise ValueError(f"{endpoint} takes no since, continuation token or limit")
        return (purge_status if endpoint == "purge_status" else pool_caches)(worker_pool_id)
    if endpoint == "list_purge_history":
        return list_purge_history(
            worker_pool_id, since=since, continuation_token=continuation_token, limit=limit
        )
    if worker_pool_id is not None or since is not None:
        raise ValueError(f"{endpoint} takes no worker pool id or since")
    if endpoint == "all_purge_requests":
        return all_purge_requests(continuation_token, limit)
    if continuation_token is not None or limit is not None:
        raise ValueError(f"{endpoint} takes no continuation token or limit")
    simple: dict[str, Callable[[], Call[Any]]] = {
        "ping": ping,
        "heartbeat": heartbeat,
        "lbheartbeat": lbheartbeat,
        "version": version,
    }
    if endpoint not in simple:
        raise ValueError(f"no GET endpoint {endpoint!r}; one of {', '.join(GET_ENDPOINTS)}")
    return simple[endpoint]()


def next_page_token(sent: str | None, page: OpenAllPurgeRequestsList | PurgeHistory) -> str | None:
    """The token for the next page, or None when the listing is complete.

    A server that hands back the token it was given with an empty page would loop forever
    (upstream does with `limit=0`); that ends the listing too.
    """
    token = page.continuation_token
    rows = page.requests if isinstance(page, OpenAllPurgeRequestsList) else page.events
    if token is None or (token == sent and not rows):
        return None
    return token

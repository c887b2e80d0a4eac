"""The endpoints' handlers: what each does once its request is matched, valid and authorised.

A handler reads the call's checked values (`call.params`, `call.query`, `request.payload`) and
answers: with a Response at once when it can, else with an awaitable one. Every rule about the
request itself lives in the pipeline and the endpoint table.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping
from typing import Any, Protocol, TypeAlias, TypeVar

import orjson

from purgecache.api.errors import ApiError
from purgecache.api.request import Call, Request
from purgecache.api.responses import NO_CONTENT, Response, json_response
from purgecache.auth.scopes import ScopeExpression
from purgecache.circuit import CircuitOpen
from purgecache.expansion import Expansion, TooManyPairs
from purgecache.logs import log_event
from purgecache.model import (
    MAX_USER_AGENT_KEPT,
    OBSERVER_HEADER,
    CacheInventory,
    CacheReceipt,
    HistoryFilter,
    Provenance,
    PurgeEvent,
    PurgeRequest,
    WorkerReport,
    format_time,
    parse_since,
)
from purgecache.selectors import PatternError, Selector
from purgecache.service import PurgeService, history_token
from purgecache.storage import StorageError

log = logging.getLogger("purgecache")

T = TypeVar("T")
Answer: TypeAlias = Response | Awaitable[Response]
HEARTBEAT_FAILED = b'{"checks":{"database":"unavailable"}}'


class Deps(Protocol):
    """What handlers use of the application."""

    service: PurgeService
    version_body: bytes

    def uptime(self) -> float:
        """Seconds since this process started serving."""

    def audit_purge(self, client_id: str | None, purge: PurgeRequest) -> None:
        """Count an accepted purge and write its audit line."""

    def client_ip(self, request: Request) -> str | None:
        """The caller's address (X-Forwarded-For only behind a trusted proxy)."""

    def check_scopes(self, call: Call, required: ScopeExpression | None) -> None:
        """403 (listing every missing scope) unless the caller, already authenticated by
        the pipeline, satisfies `required`."""


def ping(deps: Deps, request: Request, call: Call) -> Response:
    """`ping`: alive, with the process uptime."""
    return json_response(200, orjson.dumps({"alive": True, "uptime": deps.uptime()}))


def lbheartbeat(deps: Deps, request: Request, call: Call) -> Response:
    """`lbheartbeat`: the process answers."""
    return json_response(200, b"{}")


def version(deps: Deps, request: Request, call: Call) -> Response:
    """`version`: the Dockerflow version object."""
    return json_response(200, deps.version_body)


async def heartbeat(deps: Deps, request: Request, call: Call) -> Response:
    """`heartbeat`: 200 when the database answers, 503 naming the failed check otherwise."""
    try:
        await deps.service.check()
    except StorageError as error:
        if not isinstance(error, CircuitOpen):  # the circuit logs when it opens
            log_event(log, logging.WARNING, "heartbeat-failed", error=str(error))
        return json_response(503, HEARTBEAT_FAILED, ("retry-after", "5"))
    return json_response(200, b"{}")


def provenance(
    deps: Deps, request: Request, call: Call, reason: str | None = None, link: str | None = None
) -> Provenance:
    """Who is purging, from where, how they signed and why: kept in the purge history."""
    agent = request.headers.get("user-agent")
    return Provenance(
        call.name,
        call.client_id,
        deps.client_ip(request),
        call.signed_spelling(),
        agent[:MAX_USER_AGENT_KEPT] if agent else None,
        reason,
        link,
    )


async def purge_cache(deps: Deps, request: Request, call: Call) -> Response:
    """`purgeCache`: store the purge and its event durably (204)."""
    cache_name: str = request.payload["cacheName"]
    origin = provenance(deps, request, call)
    purge = await deps.service.purge(call.params["workerPoolId"], cache_name, origin)
    deps.audit_purge(call.client_id, purge)
    return NO_CONTENT


async def create_purge(deps: Deps, request: Request, call: Call) -> Response:
    """`createPurge`: `purgeCache` with a reason, a link and a policy; answers the event
    recorded."""
    payload = request.payload
    origin = provenance(deps, request, call, payload.get("reason"), payload.get("link"))
    pool, until_applied = call.params["workerPoolId"], payload.get("untilApplied")
    purge = await deps.service.purge(pool, payload["cacheName"], origin, until_applied)
    deps.audit_purge(call.client_id, purge)
    kept = purge.until_applied is not None
    event = PurgeEvent(
        purge.worker_pool_id, purge.cache_name, purge.before, origin, until_applied=kept
    )
    return json_response(200, orjson.dumps(event.to_wire()))


async def cancel_purge(deps: Deps, request: Request, call: Call) -> Response:
    """`cancelPurge`: withdraw the open purge of a cache; 404 when there is none."""
    payload = request.payload
    pool, cache_name = call.params["workerPoolId"], payload["cacheName"]
    origin = provenance(deps, request, call, payload.get("reason"))
    before = await deps.service.cancel(pool, cache_name, origin)
    if before is None:
        raise ApiError(
            "ResourceNotFound",
            "No open purge request of cache {{cacheName}} on worker pool {{workerPoolId}}",
            {"cacheName": cache_name, "workerPoolId": pool},
        )
    answer = {"workerPoolId": pool, "cacheName": cache_name, "before": format_time(before)}
    return json_response(200, orjson.dumps(answer))


def _selector(deps: Deps, call: Call, payload: dict[str, Any]) -> Selector:
    """The request's selector; a 400 with the matcher's message when a pattern is invalid, a
    403 for a caller without credentials that may not read anything it reaches (see
    `_may_expand`)."""
    try:
        selector = Selector(payload["workerPoolPattern"], payload["cacheNamePattern"])
    except PatternError as error:
        raise ApiError("InputError", str(error)) from error
    if call.client_id is None and not _may_expand(call, payload, selector):
        deps.check_scopes(call, _selector_scopes(call, payload, [selector.pool_pattern], []))
    return selector


async def create_selector_purge(deps: Deps, request: Request, call: Call) -> Response:
    """`createSelectorPurge`: expand a selector; show the pairs (dry run) or purge them all."""
    payload = request.payload
    selector = _selector(deps, call, payload)
    service = deps.service
    try:
        expansion = await service.expand_selector(selector)
    except TooManyPairs as error:
        raise ApiError("InputError", str(error)) from error
    dry_run = payload.get("dryRun", False)
    # The read scope of every matched pool, and to apply the selector's and those of the pairs
    # of the pools the caller may read: a refusal lists all of them at once, and never a cache
    # name of a pool the caller may not read. Once it holds every read scope, that is all.
    pairs = _readable_pairs(call, payload, expansion.keys)
    required = _selector_scopes(call, payload, expansion.pools, pairs, apply=not dry_run)
    deps.check_scopes(call, required)
    threshold = service.selector_confirm_threshold
    if dry_run:
        return json_response(200, orjson.dumps(expansion.to_wire(True, threshold, None)))
    _confirmed(expansion, payload.get("digest"), threshold)
    origin = provenance(deps, request, call, payload.get("reason"), payload.get("link"))
    until_applied = payload.get("untilApplied")
    before, purges = await service.apply_selector(expansion, origin, until_applied)
    for purge in purges:
        deps.audit_purge(call.client_id, purge)
    return json_response(200, orjson.dumps(expansion.to_wire(False, threshold, before)))


async def cancel_selector_purge(deps: Deps, request: Request, call: Call) -> Response:
    """`cancelSelectorPurge`: withdraw an applied selector and the open purges it wrote; 404
    when it is not open, 409 when it was applied again meanwhile."""
    payload = request.payload
    selector = _selector(deps, call, payload)
    found = await deps.service.selector_purges(selector)
    before, pairs = found if found is not None else (0, [])
    pools = sorted({pool for pool, _ in pairs})
    readable = _readable_pairs(call, payload, pairs)
    deps.check_scopes(call, _selector_scopes(call, payload, pools, readable, apply=True))
    values = {
        "workerPoolPattern": selector.pool_pattern,
        "cacheNamePattern": selector.cache_pattern,
    }
    if found is None:
        raise ApiError(
            "ResourceNotFound",
            "No open selector {{workerPoolPattern}} {{cacheNamePattern}} to cancel",
            values,
        )
    origin = provenance(deps, request, call, payload.get("reason"))
    gone = await deps.service.cancel_selector(selector, before, pairs, origin)
    if gone is None:
        raise ApiError(
            "RequestConflict",
            "The selector {{workerPoolPattern}} {{cacheNamePattern}} was applied again while "
            "it was being cancelled; nothing was cancelled: try again.",
            values,
        )
    answer = {
        "selector": values,
        "before": format_time(before),
        "pairs": [{"workerPoolId": pool, "cacheName": cache} for pool, cache in gone],
    }
    return json_response(200, orjson.dumps(answer))


def _may_expand(call: Call, payload: dict[str, Any], selector: Selector) -> bool:
    """Whether an anonymous caller holds (by the service's anonymous scopes) the selector
    scope itself or a scope that could grant reading a pool the selector matches (a star
    scope reaching into the read scope's prefix always could), both as the endpoint's
    template spells them. With neither it would only get a 403 unless nothing matched: it is
    refused before the expansion, which reads the inventory, the history and the open
    requests (the whole history on SQLite), so that callers without credentials cannot make
    the service do that at will. A caller with credentials is answered by the published
    scopes (`_selector_scopes`)."""
    held = call.verdict.scopes if call.verdict is not None else None
    if held is None:
        return False
    selector_scope = _selector_scopes(call, payload, [], [], apply=True)
    if selector_scope is not None and held.satisfies(selector_scope):
        return True
    read = _selector_scopes(call, payload, [""], [])  # AllOf [the read scope of pool ""]
    assert isinstance(read, dict)
    ((_, (prefix,)),) = read.items()
    assert isinstance(prefix, str)
    for scope in held:
        if scope.endswith("*"):
            if prefix.startswith(scope[:-1]) or scope[:-1].startswith(prefix):
                return True
        elif scope.startswith(prefix) and selector.matches_pool(scope[len(prefix) :]):
            return True
    return False


def _readable_pairs(
    call: Call, payload: dict[str, Any], pairs: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The pairs whose pool the caller may read (by the endpoint's read scope)."""
    held = call.verdict.scopes if call.verdict is not None else None
    if held is None:
        return []
    readable: dict[str, bool] = {}
    for pool, _ in pairs:
        if pool not in readable:
            read = _selector_scopes(call, payload, [pool], [])
            readable[pool] = read is not None and held.satisfies(read)
    return [pair for pair in pairs if readable[pair[0]]]


def _selector_scopes(
    call: Call,
    payload: dict[str, Any],
    pools: list[str],
    pairs: list[tuple[str, str]],
    *,
    apply: bool = False,
) -> ScopeExpression | None:
    """The endpoint's scope template rendered for the selector, the pools it matched and
    the pairs it expanded to, to expand (read) or to apply."""
    assert call.endpoint is not None and call.endpoint.template is not None
    values = {
        "workerPoolPattern": payload["workerPoolPattern"],
        "cacheNamePattern": payload["cacheNamePattern"],
        "matchedPools": pools,
        "pairs": [f"{pool}:{cache}" for pool, cache in pairs],
        "apply": apply,
    }
    return call.endpoint.template.render(values)


def _confirmed(expansion: Expansion, digest: str | None, threshold: int) -> None:
    """Past the threshold, an apply must quote the digest of the set it would purge."""
    if digest is None:
        if len(expansion.pairs) > threshold:
            raise ApiError(
                "InputError",
                f"The selector matches {len(expansion.pairs)} (pool, cache name) pairs, more "
                f"than the confirm threshold ({threshold}): dry-run it first (`dryRun`: true), "
                "review the pairs, then apply with the `digest` the dry run answered.",
            )
        return
    if digest != expansion.digest:
        raise ApiError(
            "RequestConflict",
            f"The selector now matches another set of pairs ({len(expansion.pairs)}, digest "
            f"{expansion.digest}) than the one confirmed ({digest}); nothing was purged: "
            "dry-run it again and review.",
        )


async def list_pool_selectors(deps: Deps, request: Request, call: Call) -> Response:
    """`listPoolSelectors`: the open selectors matching the pool, newest first."""
    since = _checked(call.query, "since", int)
    answer = await deps.service.pool_selectors(call.params["workerPoolId"], since)
    return json_response(200, orjson.dumps(answer))


async def list_purge_history(deps: Deps, request: Request, call: Call) -> Response:
    """`listPurgeHistory`: one page of the events the filters match, newest first."""
    query = call.query
    token = query.get("continuationToken")
    limit = query.get("limit", HISTORY_PAGE)
    assert (token is None or isinstance(token, str)) and isinstance(limit, int)
    wanted = HistoryFilter(
        _checked(query, "workerPoolId", str),
        _checked(query, "cacheName", str),
        _checked(query, "clientId", str),
        _checked(query, "since", int),
        _checked(query, "until", int),
    )
    page = await deps.service.purge_history(wanted, token, limit)
    answer: dict[str, object] = {"events": [event.to_wire() for event in page.events]}
    answer["total"] = page.total
    if page.next_after is not None:
        answer["continuationToken"] = history_token(page.next_after)
    return json_response(200, orjson.dumps(answer))


async def report_worker_sync(deps: Deps, request: Request, call: Call) -> Response:
    """`reportWorkerSync`: keep a worker's receipts durably (204)."""
    payload = request.payload
    caches = payload.get("caches", [])
    if len({cache["cacheName"] for cache in caches}) != len(caches):
        raise ApiError("InputError", "Each cacheName may appear once in a report")
    inventory = payload.get("inventory")
    if inventory is not None and len({c["cacheName"] for c in inventory}) != len(inventory):
        raise ApiError("InputError", "Each cacheName may appear once in an inventory")
    report = WorkerReport(
        call.params["workerPoolId"],
        payload["workerGroup"],
        payload["workerId"],
        tuple(_receipt(cache) for cache in caches),
        None if inventory is None else tuple(_held(cache) for cache in inventory),
    )
    await deps.service.report_worker_sync(report, call.client_id)
    return NO_CONTENT


def _report_time(cache: dict[str, Any], name: str) -> int:
    """A (schema-checked) time field of a report's entry, in ms; a 400 if no real time."""
    try:
        return parse_since(cache[name])
    except ValueError as error:
        raise ApiError("InputValidationError", f"{name} {cache[name]!r} is not a time") from error


def _held(cache: dict[str, Any]) -> CacheInventory:
    """An inventory entry from its (schema-checked) JSON."""
    last_used = None if "lastUsed" not in cache else _report_time(cache, "lastUsed")
    return CacheInventory(cache["cacheName"], cache["instances"], cache["bytes"], last_used)


async def pool_caches(deps: Deps, request: Request, call: Call) -> Response:
    """`poolCaches`: the cache names the pool's active workers hold, with their totals."""
    held = await deps.service.pool_caches(call.params["workerPoolId"])
    return json_response(200, orjson.dumps(held))


async def purge_status(deps: Deps, request: Request, call: Call) -> Response:
    """`purgeStatus`: each open purge of the pool and how far its active workers got."""
    cache_name = _checked(call.query, "cacheName", str)
    status = await deps.service.purge_status(call.params["workerPoolId"], cache_name)
    return json_response(200, orjson.dumps(status))


def _receipt(cache: dict[str, Any]) -> CacheReceipt:
    """A receipt from its (schema-checked) JSON."""
    honoured = _report_time(cache, "honouredBefore")
    return CacheReceipt(
        cache["cacheName"],
        honoured,
        cache["instancesDeleted"],
        cache["bytesFreed"],
        cache.get("oldestDeletedAgeMs"),
        cache["failures"],
        cache["inUse"],
    )


HISTORY_PAGE = 100  # events on a page when `limit` is not given


def _checked(query: Mapping[str, object], name: str, kind: type[T]) -> T | None:
    """A query value as its parameter's rule parsed it (None: not given)."""
    value = query.get(name)
    assert value is None or isinstance(value, kind)
    return value


def purge_requests(deps: Deps, request: Request, call: Call) -> Answer:
    """`purgeRequests`: the pool's answer, at once from the per-pool cache when it is there."""
    pool = call.params["workerPoolId"]
    since = call.query.get("since")
    assert since is None or isinstance(since, int)
    worker = call.client_id if request.headers.get(OBSERVER_HEADER) is None else None
    body = deps.service.cached_purge_requests_json(pool, since, worker)
    if body is None:
        return _stored_purge_requests(deps.service, pool, since, worker)
    return json_response(200, body)


async def _stored_purge_requests(
    service: PurgeService, pool: str, since: int | None, client_id: str | None
) -> Response:
    return json_response(200, await service.purge_requests_json(pool, since, client_id))


async def all_purge_requests(deps: Deps, request: Request, call: Call) -> Response:
    """`allPurgeRequests`: one keyset-paginated page of every open request."""
    token = call.query.get("continuationToken")
    limit = call.query.get("limit", 1000)
    assert (token is None or isinstance(token, str)) and isinstance(limit, int)
    return json_response(200, await deps.service.list_json(token, limit))

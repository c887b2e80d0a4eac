"""Every endpoint of the API, declared once.

An `Endpoint` holds everything the rest of the API reads about it: method and route (as
published, with the seed era's spelling beside it), handler, scope template (compiled once),
the query parameters it accepts and how each is checked, its body and answer schemas, and
whether the fast path may answer it. Routing (`EndpointTable`), scope enforcement and query
validation (`pipeline`) and the published `api.json` (`reference`) are all read off `ENDPOINTS`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from purgecache.auth.scopes import ScopeExpression, ScopeTemplate
from purgecache.model import (
    MAX_CACHE_NAME_LENGTH,
    WORKER_POOL_ID_JS_PATTERN,
    WORKER_POOL_ID_RE,
    parse_since,
)

if TYPE_CHECKING:
    from purgecache.api.handlers import Deps
    from purgecache.api.request import Call, Request
    from purgecache.api.responses import Response

Handler = Callable[["Deps", "Request", "Call"], "Response | Awaitable[Response]"]

MAX_PAGE = 1000  # the largest `limit` of a listing; larger values are capped
_RENDERINGS_KEPT = 4096
_ROUTES_KEPT = 4096  # per spelling (raw, decoded): a fleet asks about the same few URLs


@dataclass(frozen=True, slots=True)
class QueryParam:
    """A query-string parameter an endpoint accepts: `parse` gives its value or raises
    ValueError with the one line the 400 reply shows."""

    name: str
    parse: Callable[[str], object]


@dataclass(frozen=True, slots=True)
class UrlParam:
    """A URL parameter: `valid` decides; the 400 reply quotes `pattern`. A wildcard takes the
    rest of the path, slashes and all (upstream's `{*workerPoolId}`)."""

    valid: Callable[[str], object]  # truthy when valid
    pattern: str
    wildcard: bool = False


URL_PARAMS: Mapping[str, UrlParam] = {
    "workerPoolId": UrlParam(WORKER_POOL_ID_RE.fullmatch, WORKER_POOL_ID_JS_PATTERN, wildcard=True),
}


def _moment(name: str) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            return parse_since(value)
        except ValueError as error:
            raise ValueError(f"Invalid query-string parameter {name}={value!r}: {error}") from error

    return parse


def _text(name: str, cap: int) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if not value or len(value) > cap or "\x00" in value:
            raise ValueError(
                f"Invalid query-string parameter {name}: must be 1 to {cap} characters, no NUL"
            )
        return value

    return parse


def _pool(value: str) -> str:
    if not WORKER_POOL_ID_RE.fullmatch(value):
        raise ValueError(
            f"Invalid query-string parameter workerPoolId={value!r}: does not match the "
            f"pattern {WORKER_POOL_ID_JS_PATTERN}"
        )
    return value


def _limit(value: str) -> int:
    if not value.isdigit() or not value.isascii() or int(value) == 0:
        raise ValueError(f"Invalid query-string parameter limit={value!r}: must be an integer >= 1")
    return min(int(value), MAX_PAGE)


def _continuation_token(value: str) -> str:
    if not value.strip("\r\n"):
        raise ValueError("Invalid query-string parameter continuationToken")
    return value


SINCE = QueryParam("since", _moment("since"))
UNTIL = QueryParam("until", _moment("until"))
POOL_FILTER = QueryParam("workerPoolId", _pool)
CACHE_FILTER = QueryParam("cacheName", _text("cacheName", MAX_CACHE_NAME_LENGTH))
CLIENT_FILTER = QueryParam("clientId", _text("clientId", 1024))
LIMIT = QueryParam("limit", _limit)
CONTINUATION_TOKEN = QueryParam("continuationToken", _continuation_token)


@dataclass(frozen=True)
class Endpoint:
    """One endpoint, as routed, checked, enforced and published."""

    name: str
    method: str  # GET or POST; HEAD is answered wherever GET is
    route: str  # relative to the API base, current generation, `<param>` placeholders
    handler: Handler
    category: str
    title: str
    description: str
    seed_route: str | None = None  # the same URL as the seed era (taskcluster 19) spelt it
    scopes: str | dict[str, Any] | None = None  # scope expression template, as published
    query: tuple[QueryParam, ...] = ()
    input: str | None = None  # schema file name under schemas/v1/
    output: str | None = None
    fast: bool = False  # its common successes may take the fast path
    stability: str = "stable"
    # Query parameters the scope template reads, each with the value it reads when absent.
    scope_query: Mapping[str, str] | None = None
    # The template reads values the handler works out (a selector's expansion): the pipeline
    # only authenticates, the handler renders `template` and checks, in stages.
    staged_scopes: bool = False
    # Read off the fields above once (compiled for the request path):
    template: ScopeTemplate | None = field(init=False, compare=False)
    args: tuple[str, ...] = field(init=False)  # URL parameters, in route order
    query_names: tuple[str, ...] = field(init=False)  # accepted query keys (besides `bewit`)
    # Whether the scope check comes before validation: when the URL alone renders the
    # template (upstream's order, spec api.md §2); otherwise a bad body is a 400 first.
    authorizes_early: bool = field(init=False)
    checks_request: bool = field(init=False)  # has URL parameters, query parameters or a body
    _rendered: dict[tuple[str, ...], ScopeExpression | None] = field(
        init=False, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        template = None if self.scopes is None else ScopeTemplate(self.scopes)
        args = tuple(part[1:-1] for part in self.route.split("/") if part.startswith("<"))
        unknown = set(args) - set(URL_PARAMS)
        if unknown:
            raise ValueError(f"{self.name}: no rule for URL parameter(s) {sorted(unknown)}")
        early = template is not None and set(template.params) <= set(args)
        object.__setattr__(self, "template", template)
        object.__setattr__(self, "args", args)
        object.__setattr__(self, "query_names", tuple(param.name for param in self.query))
        object.__setattr__(self, "authorizes_early", early)
        checks = bool(args or self.query or self.input)
        object.__setattr__(self, "checks_request", checks)
        object.__setattr__(self, "_rendered", {})

    def required_scopes(
        self, params: Mapping[str, str], payload: object, query: Mapping[str, object] = {}
    ) -> ScopeExpression | None:
        """The scope expression `template` renders for a call's URL parameters, body and
        (`scope_query`) query values (None: public). Renderings from URL parameters alone are
        kept (a fleet asks about the same pools over and over)."""
        assert self.template is not None
        if not self.authorizes_early:
            values = {**payload, **params} if isinstance(payload, dict) else params
            if self.scope_query is not None:
                values = {**values, **{k: query.get(k, v) for k, v in self.scope_query.items()}}
            return self.template.render(values)
        key = tuple(params.values())
        if key in self._rendered:
            return self._rendered[key]
        if len(self._rendered) >= _RENDERINGS_KEPT:
            self._rendered.clear()
        rendered = self._rendered[key] = self.template.render(params)
        return rendered


@dataclass(frozen=True, slots=True)
class _Pattern:
    """A route compiled for matching against the sub-path under the API base."""

    fixed: tuple[str, ...]  # literal leading segments
    wildcard: str | None  # the parameter taking the rest, if any


Methods = Mapping[str, "Endpoint"]


def _compile(route: str) -> _Pattern:
    segments = route.strip("/").split("/")
    if segments[-1].startswith("<"):
        name = segments[-1][1:-1]
        if not URL_PARAMS[name].wildcard or any(s.startswith("<") for s in segments[:-1]):
            raise ValueError(f"route {route!r}: only a trailing wildcard parameter is supported")
        return _Pattern(tuple(segments[:-1]), name)
    return _Pattern(tuple(segments), None)


class EndpointTable:
    """The routes of `endpoints`, matched in declaration order (which decides between
    `GET /purge-cache/list` and a pool called `list`, spec api.md §3.1)."""

    def __init__(self, endpoints: Iterable[Endpoint]) -> None:
        self.endpoints = tuple(endpoints)
        fixed: dict[str, dict[str, Endpoint]] = {}
        wild: dict[str, dict[str, Endpoint]] = {}
        for endpoint in self.endpoints:
            pattern = _compile(endpoint.route)
            if pattern.wildcard is None:
                fixed.setdefault("/".join(pattern.fixed), {}).setdefault(endpoint.method, endpoint)
            else:
                prefix = "".join(f"{segment}/" for segment in pattern.fixed)
                wild.setdefault(prefix, {}).setdefault(endpoint.method, endpoint)
        self._wild = tuple(wild.items())
        # A method a fixed route lacks falls through to a wildcard route that matches the
        # same path (`POST /purge-cache/list` purges the pool `list`): merged once, here.
        self._fixed: dict[str, tuple[Methods, str | None]] = {}
        for path, methods in fixed.items():
            under = next((p for p, _ in self._wild if f"{path}/".startswith(p)), None)
            merged = methods if under is None else {**wild[under], **methods}
            for spelling in (path, f"{path}/"):  # a fixed route also answers with a slash
                tail = None if under is None else spelling[len(under) :]
                self._fixed[spelling] = (merged, tail)
        for prefix, methods in self._wild:
            if len({e.args[-1] for e in methods.values()}) > 1:
                raise ValueError(f"routes under {prefix!r} name their wildcard differently")
        self._raw: dict[str, Route] = {}
        self._decoded: dict[str, Route] = {}

    def match(self, sub: str) -> tuple[Methods, str | None] | None:
        """The endpoints by method that a raw sub-path (after the API base) reaches, with the
        raw text of the wildcard parameter, or None (404)."""
        found = self._fixed.get(sub)
        if found is not None:
            return found
        for prefix, methods in self._wild:
            if sub.startswith(prefix):
                return methods, sub[len(prefix) :]
        return None

    def route(self, sub: str, decoded: bool) -> Route | None:
        """`match`'s answer with the wildcard parameter decoded and checked by its rule, kept
        for the sub-paths seen last (`decoded`: the server already percent-decoded the path,
        as RSGI does)."""
        routes = self._decoded if decoded else self._raw
        route = routes.get(sub)
        if route is None:
            found = self.match(sub)
            if found is None:
                return None
            if len(routes) >= _ROUTES_KEPT:
                routes.clear()
            route = routes[sub] = _route(*found, decoded)
        return route


@dataclass(frozen=True, slots=True)
class Route:
    """Where a sub-path leads: the endpoints by method, the wildcard parameter by name with
    its decoded value (empty without one), and the reason that value breaks its rule, if it
    does (the 400 InvalidRequestArguments text)."""

    methods: Methods
    params: Mapping[str, str]
    problem: str | None


def _route(methods: Methods, raw: str | None, decoded: bool) -> Route:
    from purgecache.api.request import decode_wildcard

    names = {e.args[-1] for e in methods.values() if e.args}
    if raw is None or not names:
        return Route(methods, {}, None)
    (name,) = names  # one wildcard parameter per route prefix (checked by EndpointTable)
    rule, reason = URL_PARAMS[name], None
    try:
        value = raw if decoded else decode_wildcard(raw)
    except ValueError:
        value, reason = raw, "is not properly percent-encoded"
    if reason is None and not rule.valid(value):
        reason = f"does not match the pattern {rule.pattern}"
    problem = None if reason is None else f"Invalid URL parameter {name}: {value!r} {reason}"
    return Route(methods, {name: value}, problem)


# Applying (or cancelling) a selector: the read scope of every pool it reaches, and to apply
# the literal selector scope and every pair's purge scope (see createSelectorPurge).
SELECTOR_SCOPES: dict[str, Any] = {
    "AllOf": [
        {
            "for": "workerPoolId",
            "in": "matchedPools",
            "each": "purge-cache:history::<workerPoolId>",
        },
        {
            "if": "apply",
            "then": {
                "AllOf": [
                    "purge-cache:<workerPoolPattern>:<cacheNamePattern>",
                    {"for": "pair", "in": "pairs", "each": "purge-cache:<pair>"},
                ]
            },
        },
    ]
}


def _declare() -> tuple[Endpoint, ...]:
    from purgecache.api import handlers

    monitoring = "Monitoring"
    purging = "Purge-Cache Service"
    history = "Purge History (extension)"
    receipts = "Workers' Receipts (extension)"
    selectors = "Selector Purges (extension)"
    return (
        Endpoint(
            "ping",
            "GET",
            "/ping",
            handlers.ping,
            monitoring,
            "Ping Server",
            "Respond without doing anything. Used to check the service is alive.",
            seed_route="/ping",
            fast=True,
        ),
        Endpoint(
            "lbheartbeat",
            "GET",
            "/__lbheartbeat__",
            handlers.lbheartbeat,
            monitoring,
            "Load Balancer Heartbeat",
            "Answers 200 as long as the process serves requests.",
        ),
        Endpoint(
            "version",
            "GET",
            "/__version__",
            handlers.version,
            monitoring,
            "Taskcluster Version",
            "The Dockerflow version object of this deployment.",
        ),
        Endpoint(
            "purgeCache",
            "POST",
            "/purge-cache/<workerPoolId>",
            handlers.purge_cache,
            purging,
            "Purge Worker Cache",
            "Ask the workers of `workerPoolId` to discard their caches named `cacheName` "
            "created before now. Purging the same cache again moves that time forward.",
            seed_route="/purge-cache/<provisionerId>/<workerType>",
            scopes="purge-cache:<workerPoolId>:<cacheName>",
            input="purge-cache-request.json",
            fast=True,
        ),
        Endpoint(
            "allPurgeRequests",
            "GET",
            "/purge-cache/list",
            handlers.all_purge_requests,
            purging,
            "All Open Purge Requests",
            "Every open purge request, ordered by worker pool and cache name, in pages of at "
            "most `limit` (1 to 1000). Pass `continuationToken` back to get the next page; "
            "it is absent on the last page. For administrators, not workers.",
            seed_route="/purge-cache/list",
            scopes="purge-cache:all-purge-requests",
            query=(CONTINUATION_TOKEN, LIMIT),
            output="all-purge-cache-request-list.json",
        ),
        Endpoint(
            "purgeRequests",
            "GET",
            "/purge-cache/<workerPoolId>",
            handlers.purge_requests,
            purging,
            "Open Purge Requests for a worker pool",
            "The purge requests of one worker pool with `before` at or after `since` (default: "
            "all), ordered by cache name. Workers call this before each task and discard "
            "caches of those names created before `before`.",
            seed_route="/purge-cache/<provisionerId>/<workerType>",
            scopes="purge-cache:purge-requests::<workerPoolId>",
            query=(SINCE,),
            output="purge-cache-request-list.json",
            fast=True,
        ),
        Endpoint(
            "heartbeat",
            "GET",
            "/__heartbeat__",
            handlers.heartbeat,
            monitoring,
            "Heartbeat",
            "Answers 200 when the database answers, 503 otherwise.",
        ),
        Endpoint(
            "createPurge",
            "POST",
            "/ext/purge/<workerPoolId>",
            handlers.create_purge,
            history,
            "Purge Worker Cache, Saying Why",
            "Purge like `purgeCache`, with an optional `reason` (at most 1,000 characters) and "
            "`link` (an absolute http(s) URL) kept in the purge history, and `untilApplied` "
            "(default: the service's setting) to keep the purge past the retention until "
            "every worker active on the pool applied it, up to a maximum age. Answers the "
            "event recorded.",
            scopes="purge-cache:<workerPoolId>:<cacheName>",
            input="create-purge-request.json",
            output="purge-event.json",
            stability="experimental",
        ),
        Endpoint(
            "cancelPurge",
            "POST",
            "/ext/cancel/<workerPoolId>",
            handlers.cancel_purge,
            history,
            "Cancel a Purge",
            "Withdraw the open purge request of `cacheName` on the pool: workers no longer "
            "receive it, and the history records it as cancelled (with the caller and the "
            "optional `reason`). 404 when the cache has no open purge request. Answers the "
            "purge withdrawn. The pair is also withdrawn from every open selector that covers "
            "it (`listPoolSelectors` lists it in `exceptCacheNames`, so agents leave its "
            "caches alone); `cancelSelectorPurge` withdraws a whole selector.",
            scopes="purge-cache:<workerPoolId>:<cacheName>",
            input="cancel-purge-request.json",
            output="cancelled-purge.json",
            stability="experimental",
        ),
        Endpoint(
            "listPurgeHistory",
            "GET",
            "/ext/history",
            handlers.list_purge_history,
            history,
            "Purge History",
            "Every accepted purge (through `purgeCache` or `createPurge`) with who asked, when, "
            "from where and why, newest first, in pages of at most `limit` (1 to 1000, default "
            "100), with the total the filters match. Filters: `workerPoolId`, `cacheName`, "
            "`clientId`, `since` (inclusive) and `until` (exclusive). Without `workerPoolId` "
            "the scope needed is `purge-cache:history::*`.",
            scopes="purge-cache:history::<workerPoolId>",
            scope_query={"workerPoolId": "*"},
            query=(
                POOL_FILTER,
                CACHE_FILTER,
                CLIENT_FILTER,
                SINCE,
                UNTIL,
                CONTINUATION_TOKEN,
                LIMIT,
            ),
            output="purge-history.json",
            stability="experimental",
        ),
        Endpoint(
            "reportWorkerSync",
            "POST",
            "/ext/report/<workerPoolId>",
            handlers.report_worker_sync,
            receipts,
            "Report a Worker's Sync",
            "A worker says what it did about its pool's purge requests: per cache name, the "
            "newest purge `before` it honoured, the copies it deleted for it and their size, "
            "the oldest deleted copy's age, failures, and copies in use (deleted on release). "
            "Idempotent: a receipt for an older purge than the one kept is ignored. 204.",
            scopes="purge-cache:report::<workerPoolId>:<workerGroup>/<workerId>",
            input="worker-sync-report.json",
            stability="experimental",
        ),
        Endpoint(
            "purgeStatus",
            "GET",
            "/ext/status/<workerPoolId>",
            handlers.purge_status,
            receipts,
            "Purge Convergence",
            "Each open purge of the pool (only `cacheName`'s when given) and how far the "
            "workers active within the activity window got: applied (receipt), fetched and "
            "not confirmed, not seen since the purge (with when last seen). Workers that never "
            "report count by client id once `purgeRequests` served them the purge; anonymous "
            "reads are not counted.",
            scopes="purge-cache:history::<workerPoolId>",
            query=(CACHE_FILTER,),
            output="purge-status.json",
            stability="experimental",
        ),
        Endpoint(
            "poolCaches",
            "GET",
            "/ext/caches/<workerPoolId>",
            handlers.pool_caches,
            receipts,
            "Caches Held on a Pool",
            "The cache names the pool's workers active within the activity window hold, by "
            "name, with how many workers hold each, their copies, total size and latest use, "
            "from the inventory of each worker's latest report that listed one.",
            scopes="purge-cache:history::<workerPoolId>",
            output="pool-caches.json",
            stability="experimental",
        ),
        Endpoint(
            "createSelectorPurge",
            "POST",
            "/ext/selector-purge",
            handlers.create_selector_purge,
            selectors,
            "Purge by Selector",
            "Expand a selector (`workerPoolPattern`, `cacheNamePattern`: `*` any run of "
            "characters, in the pool pattern not crossing `/`; `?` one character; `\\` "
            "escapes) into the (pool, cache name) pairs known today, from the inventory of "
            "workers active within the activity window, the purge history and the open purge "
            "requests (at most 10,000 pairs). With `dryRun` show them, their workers and bytes "
            "and the digest of the set; else write an ordinary purge request for every pair "
            "(one transaction, each history event naming the selector) and keep the selector "
            "for agents (`listPoolSelectors`). Applying more pairs than the confirm threshold "
            "needs the `digest` of a dry run: missing, 400; another set matched now, 409 "
            "`RequestConflict` and nothing is purged. Scopes: expanding needs "
            "`purge-cache:history::<workerPoolId>` for every matched pool (a 403 names "
            "matched pools, and cache names only of the pools the caller may read; a caller "
            "without credentials "
            "whose anonymous scopes hold neither the selector scope nor any scope that could "
            "read a matched pool is refused before the expansion, with a 403 naming "
            "`purge-cache:history::<workerPoolPattern>`); applying also needs the "
            "selector scope `purge-cache:<workerPoolPattern>:<cacheNamePattern>` taken "
            "literally and `purge-cache:<workerPoolId>:<cacheName>` for every pair; one 403 "
            "lists every missing scope but those of pairs of pools the caller may not read "
            "(`matchedPools`, `pairs` and `apply` in the template are the expansion's).",
            scopes=SELECTOR_SCOPES,
            staged_scopes=True,
            input="create-selector-purge-request.json",
            output="selector-purge.json",
            stability="experimental",
        ),
        Endpoint(
            "cancelSelectorPurge",
            "POST",
            "/ext/selector-cancel",
            handlers.cancel_selector_purge,
            selectors,
            "Cancel a Selector Purge",
            "Withdraw the applied selector with these patterns: agents no longer receive it "
            "(`listPoolSelectors`), and the open purge requests it wrote (those not purged "
            "again since) are withdrawn as `cancelPurge` does, each recorded as cancelled in "
            "the history with a `purge.cancelled` event (with the caller and the optional "
            "`reason`). Answers the selector, its `before` and the pairs withdrawn. 404 when "
            "no selector with these patterns is open; 409 `RequestConflict`, nothing done, "
            "when it was applied again meanwhile. Scopes as to apply it: the read scope of "
            "every pool of a purge it withdraws, the selector scope taken literally and "
            "`purge-cache:<workerPoolId>:<cacheName>` of every such purge (`matchedPools`, "
            "`pairs` and `apply` in the template are those purges').",
            scopes=SELECTOR_SCOPES,
            staged_scopes=True,
            input="cancel-selector-purge-request.json",
            output="cancelled-selector-purge.json",
            stability="experimental",
        ),
        Endpoint(
            "listPoolSelectors",
            "GET",
            "/ext/selectors/<workerPoolId>",
            handlers.list_pool_selectors,
            selectors,
            "Selectors for a Worker Pool",
            "The applied selectors, still open, whose pool pattern matches `workerPoolId`, with "
            "`before` at or after `since` (default: all), newest first. A worker deletes its "
            "caches whose names match `cacheNamePattern` and were created before `before`, "
            "including caches the service never heard of, but the cache names of the pool in "
            "`exceptCacheNames` (their purge was cancelled by `cancelPurge`).",
            scopes="purge-cache:purge-requests::<workerPoolId>",
            query=(SINCE,),
            output="pool-selectors.json",
            stability="experimental",
        ),
    )


ENDPOINTS: tuple[Endpoint, ...] = _declare()

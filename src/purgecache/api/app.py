"""The application: ASGI and RSGI entry points, dispatch, the endpoint handlers, errors, logs.

`a%2Fb` and `a/b` both reach the pool `a/b`. Under ASGI routing sees the raw path and Hawk
exactly what the client signed; RSGI hands over the decoded path, from which the signed
request target is rebuilt (`Request.resources`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import logging
import time
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import unquote_plus

import orjson
from jsonschema import Draft6Validator, FormatChecker

from purgecache.api import reference
from purgecache.api.authorization import Authorizer, empty_payload_hash, host_port
from purgecache.api.errors import NOT_FOUND_BODY, ApiError, error_body
from purgecache.api.request import (
    Receive,
    Request,
    asgi_chunks,
    decode_wildcard,
    decoded_pool_targets,
    parse_payload,
    parse_query,
)
from purgecache.api.request import read_body as read_request_body
from purgecache.api.responses import (
    API_CSP,
    API_HEADERS,
    JSON_TYPE,
    PAGE_CSP,
    Headers,
    Response,
    json_response,
    new_id,
)
from purgecache.api.routes import Call, match_route
from purgecache.auth import credentials, hawk
from purgecache.auth.authenticators import Authenticator
from purgecache.logs import LineBatcher, log_event
from purgecache.metrics import CONTENT_TYPE, Metrics
from purgecache.model import (
    WORKER_POOL_ID_JS_PATTERN,
    PurgeRequest,
    format_time,
    is_worker_pool_id,
    parse_since,
)
from purgecache.service import InvalidContinuationToken, PurgeService
from purgecache.storage import StorageError
from purgecache.web import StaticFiles

Send = Callable[[Mapping[str, Any]], Awaitable[None]]

access_log = logging.getLogger("purgecache.access")
audit_log = logging.getLogger("purgecache.audit")
log = logging.getLogger("purgecache")

GZIP_MIN_BYTES = 1024
GZIP_KEEP = 128  # compressed answers kept, each at most GZIP_KEEP_MAX_BYTES before compression
GZIP_KEEP_MAX_BYTES = 64 * 1024
_GZIP_HEADERS: Headers = [("content-encoding", "gzip"), ("vary", "Accept-Encoding")]
ROBOTS = b"User-Agent: *\nDisallow: /\n"


_NOSNIFF = ("x-content-type-options", "nosniff")
_SECURITY_HEADERS = (("content-security-policy", API_CSP), _NOSNIFF)


async def scope_body(request: Request) -> bytes:
    """Read the whole body once; later reads (the general path) get the same bytes."""
    assert request.read_whole is not None
    body = await request.read_whole()

    async def again() -> bytes:
        return body

    request.read_whole = again
    return body


def _only_since(query: str) -> int | None:
    """The time of a query string that is exactly one well-formed `since=...`, else None."""
    if not query.startswith("since=") or "&" in query:
        return None
    try:
        return parse_since(unquote_plus(query[6:], errors="strict"))
    except (UnicodeDecodeError, ValueError):
        return None


@functools.lru_cache(maxsize=256)  # clients send a handful of distinct Accept-Encoding values
def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding value allows gzip (mentioned, and not with q=0)."""
    accept_encoding = accept_encoding.lower()
    if "gzip" not in accept_encoding:
        return False
    refused = ("gzip;q=0", "gzip;q=0.0", "gzip;q=0.00", "gzip;q=0.000")
    return not any(p.strip().replace(" ", "") in refused for p in accept_encoding.split(","))


def plainly_valid(payload: object, max_cache_name: int) -> bool:
    """The one shape a valid purge body has, checked without the schema machinery (the served
    schema still decides, and explains, everything else)."""
    if type(payload) is not dict or len(payload) != 1:
        return False
    name = payload.get("cacheName")
    return type(name) is str and len(name) <= max_cache_name and "\x00" not in name


class PurgeCacheApp:
    """The purge-cache HTTP API as an ASGI application."""

    def __init__(
        self,
        service: PurgeService,
        authenticator: Authenticator,
        *,
        root_url: str,
        version: Mapping[str, str],
        max_body_bytes: int,
        expire_interval_ms: int = 3_600_000,
        access_log_enabled: bool = True,
        trust_proxy: bool = False,
        on_shutdown: Callable[[], Awaitable[None]] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.service = service
        self.base = "/api/purge-cache/v1/"
        self.authorizer = Authorizer(
            authenticator, lambda: self.service.clock(), self.base, trust_proxy
        )
        self.max_body_bytes = max_body_bytes
        self.expire_interval_ms = expire_interval_ms
        self.access_log_enabled = access_log_enabled
        self._access_lines = LineBatcher(access_log)
        self._audit_lines = LineBatcher(audit_log)
        self.on_shutdown = on_shutdown
        self.metrics = metrics or Metrics()
        service.on_cache_hit = self.metrics.cache_hit
        service.on_cache_miss = self.metrics.cache_miss
        self.started = time.monotonic()
        self.version_body = orjson.dumps(dict(version))
        self.documents = reference.documents(root_url)
        self.web = StaticFiles()
        schema = reference.load_schema("purge-cache-request.json", root_url)
        self.input_schema_id = schema["$id"]
        self.input_validator = Draft6Validator(schema, format_checker=FormatChecker())
        self.max_cache_name: int = schema["properties"]["cacheName"]["maxLength"]
        self._expiry_task: asyncio.Task[None] | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._pool_path = f"{self.base}purge-cache/"
        self._ping_path = f"{self.base}ping"
        self._hot_headers: Headers = [JSON_TYPE, *API_HEADERS, *_SECURITY_HEADERS]
        self._hot_204_headers: Headers = [*API_HEADERS, *_SECURITY_HEADERS]
        self._gzipped: dict[bytes, bytes] = {}
        self._handlers: dict[str, Callable[[Request, Call], Awaitable[Response]]] = {
            "ping": self.ping,
            "lbheartbeat": self.lbheartbeat,
            "version": self.version,
            "heartbeat": self.heartbeat,
            "purgeCache": self.purge_cache,
            "allPurgeRequests": self.all_purge_requests,
            "purgeRequests": self.purge_requests,
        }

    # ---- transports: ASGI and RSGI around one `handle` ------------------------------------

    async def __call__(self, scope: Mapping[str, Any], receive: Receive, send: Send) -> None:
        """ASGI: requests and the lifespan protocol."""
        if scope["type"] == "http":
            request = Request.from_asgi(scope)
            status, headers, body = await self.handle(request, asgi_chunks(receive))
            raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
            await send({"type": "http.response.start", "status": status, "headers": raw})
            await send({"type": "http.response.body", "body": body})
        elif scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await self.startup()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.shutdown()
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        """RSGI (granian's native interface, the faster one): one HTTP request."""
        if scope.method == "GET":
            path = scope.path
            hot: tuple[Headers, bytes] | None = None
            try:
                if path.startswith(self._pool_path):
                    hot = await self._hot_purge_requests(scope, path[len(self._pool_path) :])
                elif path == self._ping_path:
                    hot = self._hot_ping(scope)
            except Exception:  # a bug: logged, and the general path answers
                log.exception("hot path failed; the general path answers")
            if hot is not None:
                protocol.response_bytes(200, hot[0], hot[1])
                return
        request = Request.from_rsgi(scope)
        request.read_whole = protocol
        if scope.method == "POST" and request.path.startswith(self._pool_path):
            purged: Headers | None = None
            # On a bug: logged, and the general path answers (storing a purge is idempotent).
            try:
                purged = await self._hot_purge_cache(scope, request)
            except Exception:
                log.exception("hot path failed; the general path answers")
            if purged is not None:
                protocol.response_empty(204, purged)
                return
        status, headers, body = await self.handle(request, protocol)
        protocol.response_bytes(status, headers, body)

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """RSGI: called in the worker before it serves (the loop is not running yet)."""
        loop.run_until_complete(self.startup())

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        """RSGI: called in the worker after it stopped serving."""
        loop.run_until_complete(self.shutdown())

    # ---- the hot paths: the common successes of ping, purgeRequests, purgeCache under RSGI ---
    # They answer exactly what the general path would (tests compare the two); anything
    # unusual (a body on a GET, another query parameter, any failure) returns None and takes
    # the general path, which then produces the answer or the precise error.

    def _hot_ping(self, scope: Any) -> tuple[Headers, bytes] | None:
        if scope.query_string:
            return None
        started = time.perf_counter()
        body = orjson.dumps({"alive": True, "uptime": time.monotonic() - self.started})
        return self._hot_answer(scope, "ping", started, body, None)

    async def _hot_purge_requests(self, scope: Any, pool: str) -> tuple[Headers, bytes] | None:
        started = time.perf_counter()
        headers = scope.headers
        if (
            "authorization" not in headers
            or "content-length" in headers
            or "transfer-encoding" in headers
            or not is_worker_pool_id(pool)
        ):
            return None
        query = scope.query_string
        since = None
        if query:
            since = _only_since(query)
            if since is None:
                return None
        try:
            verdict = await self._hot_verdict(
                "GET",
                scope.path,
                query,
                pool,
                headers,
                scope.scheme == "https",
                scope.client,
                f"purge-cache:purge-requests::{pool}",
            )
            if verdict is None or (
                verdict.hash is not None
                and verdict.hash != empty_payload_hash(headers.get("content-type"))
            ):
                return None
            body = self.service.cached_purge_requests_json(
                pool, since
            ) or await self.service.purge_requests_json(pool, since)
        except (ApiError, StorageError):
            return None
        encoding = None
        if len(body) >= GZIP_MIN_BYTES and accepts_gzip(headers.get("accept-encoding", "")):
            body, encoding = self._gzip(body), _GZIP_HEADERS
        return self._hot_answer(scope, "purgeRequests", started, body, verdict.client_id, encoding)

    async def _hot_purge_cache(self, scope: Any, request: Request) -> Headers | None:
        """purgeCache's common success. The body, once read, stays with `request` for the
        general path should this one give up."""
        started = time.perf_counter()
        headers = request.headers
        pool = request.path[len(self._pool_path) :]
        length = headers.get("content-length", "")
        content_type = headers.get("content-type", "")
        if (
            "authorization" not in headers
            or request.query
            or not length.isdigit()
            or int(length) > self.max_body_bytes
            or "content-encoding" in headers
            or "transfer-encoding" in headers
            or content_type.partition(";")[0].strip().lower() != "application/json"
            or not is_worker_pool_id(pool)
        ):
            return None
        body = await scope_body(request)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not plainly_valid(payload, self.max_cache_name):
            return None
        cache_name: str = payload["cacheName"]
        try:
            verdict = await self._hot_verdict(
                "POST",
                request.path,
                "",
                pool,
                headers,
                request.tls,
                scope.client,
                f"purge-cache:{pool}:{cache_name}",
            )
            if verdict is None or (
                verdict.hash is not None
                and not hawk.same(hawk.payload_hash(content_type, body), verdict.hash)
            ):
                return None
            purge = await self.service.purge(pool, cache_name)
        except (ApiError, StorageError):
            return None
        self._audit_purge(verdict.client_id, purge)
        return self._hot_headers_for(
            self._hot_204_headers, "POST", "purgeCache", 204, started, verdict.client_id, scope
        )

    async def _hot_verdict(
        self,
        method: str,
        path: str,
        query: str,
        pool: str,
        headers: Any,
        tls: bool,
        peer: str | None,
        required: str,
    ) -> credentials.Verdict | None:
        """A successful verdict holding `required` for a pool URL, or None (the general path
        will explain the failure)."""
        found = host_port(
            headers.get("host", ""),
            headers.get("x-forwarded-port", ""),
            headers.get("x-forwarded-proto", ""),
            tls,
        )
        if found is None:
            return None
        host, port = found
        targets = decoded_pool_targets(self.base, path, query, pool)
        authorization = headers.get("authorization")
        verdict = self.authorizer.local_verdict(method, targets, host, port, authorization)
        if verdict is None:
            verdict = await self.authorizer.verdict(
                method,
                targets,
                host,
                port,
                authorization,
                self._rsgi_client_ip(headers, peer),
                headers.get("x-taskcluster-trace-id"),
            )
        if verdict.failed or verdict.scopes is None or not verdict.scopes.satisfies_scope(required):
            return None
        return verdict

    def _hot_answer(
        self,
        scope: Any,
        name: str,
        started: float,
        body: bytes,
        client_id: str | None,
        encoding: Headers | None = None,
    ) -> tuple[Headers, bytes]:
        # granian adds Content-Length to a response_bytes reply
        base = self._hot_headers if encoding is None else [*self._hot_headers, *encoding]
        headers = self._hot_headers_for(base, "GET", name, 200, started, client_id, scope)
        return headers, body

    def _hot_headers_for(
        self,
        base: Headers,
        method: str,
        name: str,
        status: int,
        started: float,
        client_id: str | None,
        scope: Any,
    ) -> Headers:
        """A hot reply's headers (with fresh ids), counted in the metrics and the access log."""
        request_id = new_id()
        headers = scope.headers
        answer = [
            *base,
            ("x-for-request-id", request_id),
            ("x-for-trace-id", headers.get("x-taskcluster-trace-id") or new_id()),
        ]
        self.metrics.observe_request(name, status, time.perf_counter() - started)
        if self.access_log_enabled:
            client_ip = self._rsgi_client_ip(headers, scope.client)
            self._write_access_log(method, name, status, started, client_id, client_ip, request_id)
        return answer

    def _rsgi_client_ip(self, headers: Any, peer: str | None) -> str | None:
        address = peer.rpartition(":")[0] if peer else None
        return self.authorizer.client_address(headers.get("x-forwarded-for"), address)

    async def startup(self) -> None:
        """Start background work: change notifications and periodic expiry."""
        await self.service.storage.start()
        self._expiry_task = asyncio.create_task(self._expire_periodically())
        self._flush_task = asyncio.create_task(self._flush_metrics_periodically())

    async def shutdown(self) -> None:
        """Stop background work and release storage."""
        for task in (self._expiry_task, self._flush_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.metrics.flush()
        self._access_lines.flush()
        self._audit_lines.flush()
        if self.on_shutdown is not None:
            await self.on_shutdown()

    async def _flush_metrics_periodically(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.metrics.flush()

    async def _expire_periodically(self) -> None:
        while True:
            try:
                removed = await self.service.expire()
                if removed is not None:
                    self.metrics.expiry_runs.inc()
                    self.metrics.expired_rows.inc(removed)
                    log_event(log, logging.INFO, "expired", rows=removed)
            except StorageError as error:
                self.metrics.storage_errors.inc()
                log_event(log, logging.WARNING, "expiry-failed", error=str(error))
            await asyncio.sleep(self.expire_interval_ms / 1000)

    async def handle(
        self, request: Request, chunks: AsyncIterable[bytes]
    ) -> tuple[int, Headers, bytes]:
        """Answer one request: status, every header, and the body to send."""
        started = time.perf_counter()
        request_id = new_id()
        call = Call("-", {})
        try:
            response = await self._respond(request, chunks, call)
        except Exception:  # a bug: never show its text to the caller
            response = self._internal_error(request, call)
        trace_id = request.headers.get("x-taskcluster-trace-id") or new_id()
        headers = [
            *response.headers,
            ("content-security-policy", response.csp),
            _NOSNIFF,
            ("x-for-request-id", request_id),
            ("x-for-trace-id", trace_id),
        ]
        if response.status != 204:
            headers.append(("content-length", str(len(response.body))))
        self.metrics.observe_request(call.name, response.status, time.perf_counter() - started)
        if self.access_log_enabled:
            self._write_access_log(
                request.method,
                call.name,
                response.status,
                started,
                call.client_id,
                self.authorizer.client_ip(request),
                request_id,
            )
        return response.status, headers, b"" if request.method == "HEAD" else response.body

    def _write_access_log(
        self,
        method: str,
        route: str,
        status: int,
        started: float,
        client_id: str | None,
        client_ip: str | None,
        request_id: str,
    ) -> None:
        self._access_lines.add(
            {
                "event": "request",
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "client_id": client_id,
                "client_ip": client_ip,
                "request_id": request_id,
            }
        )

    # ---- dispatch ----------------------------------------------------------------------

    async def _respond(
        self, request: Request, chunks: AsyncIterable[bytes], call: Call
    ) -> Response:
        path = request.path
        if path.startswith(self.base):
            response = await self._api(request, chunks, call, path[len(self.base) :])
            response.headers.extend(API_HEADERS)
            return response
        return await self._root(request, path)

    async def _root(self, request: Request, path: str) -> Response:
        if path == "/robots.txt":
            return Response(200, ROBOTS, [("content-type", "text/plain; charset=utf-8")])
        if request.method not in ("GET", "HEAD"):
            return json_response(404, NOT_FOUND_BODY)
        if path == "/__lbheartbeat__":
            return json_response(200, b"{}")
        if path == "/__version__":
            return json_response(200, self.version_body)
        if path == "/__heartbeat__":
            return await self.heartbeat(request, Call("heartbeat", {}))
        if path == "/metrics":
            return await self.prometheus()
        document = self.documents.get(path)
        if document is not None:
            return json_response(200, document, ("access-control-allow-origin", "*"))
        page = self.web.lookup(path)
        if page is not None:
            headers = [("content-type", page[0]), ("cache-control", "no-cache")]
            return Response(200, page[1], headers, PAGE_CSP)
        return json_response(404, NOT_FOUND_BODY)

    async def _api(
        self, request: Request, chunks: AsyncIterable[bytes], call: Call, sub: str
    ) -> Response:
        route = match_route(sub)
        if route is None:
            return json_response(404, NOT_FOUND_BODY)
        endpoints, raw_pool = route
        if request.method == "OPTIONS":
            allow = ", ".join(sorted({*endpoints, *(["HEAD"] if "GET" in endpoints else [])}))
            return Response(200, allow.encode(), [("allow", allow)])
        name = endpoints.get("GET" if request.method == "HEAD" else request.method)
        if name is None:
            return json_response(404, NOT_FOUND_BODY)
        call.name = name
        if raw_pool is not None and (name != "allPurgeRequests"):
            try:
                pool = raw_pool if request.path_decoded else decode_wildcard(raw_pool)
                call.params["workerPoolId"] = pool
            except ValueError:
                call.params["workerPoolId"] = raw_pool
                call.param_error = "is not properly percent-encoded"
        try:
            request.body = await read_request_body(request, chunks, self.max_body_bytes)
            parse_payload(request)
            return await self._handlers[name](request, call)
        except ApiError as error:
            return self._error(error, request, call)
        except StorageError as error:
            log_event(log, logging.WARNING, "storage-error", route=name, error=str(error))
            retry = ("retry-after", "5")
            unavailable = ApiError(
                "ServiceUnavailable", "The database is unavailable; retry.", headers=(retry,)
            )
            return self._error(unavailable, request, call)
        except Exception:
            return self._internal_error(request, call)

    def _internal_error(self, request: Request, call: Call) -> Response:
        """500 InternalServerError naming an incident id that the log line also carries."""
        incident = str(uuid.uuid4())
        log.exception("internal error in %s, incident %s", call.name, incident)
        text = f"Internal Server Error, incidentId {incident}."
        return self._error(ApiError("InternalServerError", text), request, call)

    def _error(self, error: ApiError, request: Request, call: Call) -> Response:
        now = format_time(self.service.clock())
        body = error_body(error, call.name, call.params, request.payload, now)
        return json_response(error.status, body, *error.headers)

    # ---- shared steps ------------------------------------------------------------------

    def _check_pool(self, call: Call) -> str:
        pool = call.params["workerPoolId"]
        if call.param_error is None and is_worker_pool_id(pool):
            return pool
        reason = call.param_error or f"does not match the pattern {WORKER_POOL_ID_JS_PATTERN}"
        raise ApiError(
            "InvalidRequestArguments",
            f"Invalid URL parameter workerPoolId: {pool!r} {reason}",
        )

    # ---- endpoints -----------------------------------------------------------------------

    async def ping(self, request: Request, call: Call) -> Response:
        """`ping`: alive, with the process uptime."""
        uptime = time.monotonic() - self.started
        return json_response(200, orjson.dumps({"alive": True, "uptime": uptime}))

    async def lbheartbeat(self, request: Request, call: Call) -> Response:
        """`lbheartbeat`: the process answers."""
        return json_response(200, b"{}")

    async def version(self, request: Request, call: Call) -> Response:
        """`version`: the Dockerflow version object."""
        return json_response(200, self.version_body)

    async def prometheus(self) -> Response:
        """`/metrics`: Prometheus exposition, with the open requests counted now."""
        try:
            open_requests: int | None = await self.service.storage.count_open(self.service.clock())
        except StorageError:
            self.metrics.storage_errors.inc()
            open_requests = None
        return Response(200, self.metrics.render(open_requests), [("content-type", CONTENT_TYPE)])

    async def heartbeat(self, request: Request, call: Call) -> Response:
        """`heartbeat`: 200 when the database answers, 503 naming the failed check otherwise."""
        try:
            await self.service.storage.check()
        except StorageError as error:
            log_event(log, logging.WARNING, "heartbeat-failed", error=str(error))
            return json_response(
                503, b'{"checks":{"database":"unavailable"}}', ("retry-after", "5")
            )
        return json_response(200, b"{}")

    async def purge_cache(self, request: Request, call: Call) -> Response:
        """`purgeCache`: validate everything, then authorise, then store durably (204)."""
        pool = self._check_pool(call)
        parse_query(request.query, ())
        if not request.is_json:
            content_type = request.headers.get("content-type")
            raise ApiError(
                "MalformedPayload",
                f"Payload must be JSON with content-type: application/json "
                f"got content-type: {content_type if content_type is not None else 'null'}",
            )
        self._validate_input(request.payload)
        cache_name: str = request.payload["cacheName"]
        await self.authorizer.authorize(request, call, f"purge-cache:{pool}:{cache_name}")
        purge = await self.service.purge(pool, cache_name)
        self._audit_purge(call.client_id, purge)
        return Response(204)

    def _audit_purge(self, client_id: str | None, purge: PurgeRequest) -> None:
        """Count an accepted purge and write its audit line."""
        self.metrics.purges_accepted += 1
        self._audit_lines.add(
            {
                "event": "purge",
                "client_id": client_id,
                "worker_pool_id": purge.worker_pool_id,
                "cache_name": purge.cache_name,
                "before": format_time(purge.before),
            }
        )

    def _validate_input(self, payload: object) -> None:
        if plainly_valid(payload, self.max_cache_name):
            return
        errors = sorted(self.input_validator.iter_errors(payload), key=lambda e: list(e.path))
        if errors:
            lines = "\n".join(
                f" * data{''.join(f'[{p!r}]' for p in e.path)}: {e.message}" for e in errors
            )
            raise ApiError(
                "InputValidationError",
                f"Request payload must match the schema {self.input_schema_id}:\n{lines}",
            )

    async def purge_requests(self, request: Request, call: Call) -> Response:
        """`purgeRequests`: the hot path, served from the per-pool cache."""
        raw_pool = call.params["workerPoolId"]
        await self.authorizer.authorize(request, call, f"purge-cache:purge-requests::{raw_pool}")
        pool = self._check_pool(call)
        query = parse_query(request.query, ("since",))
        since = None
        if "since" in query:
            try:
                since = parse_since(query["since"])
            except ValueError as error:
                raise ApiError(
                    "InvalidRequestArguments",
                    f"Invalid query-string parameter since={query['since']!r}: {error}",
                ) from error
        body = await self.service.purge_requests_json(pool, since)
        return self._maybe_gzip(request, json_response(200, body))

    async def all_purge_requests(self, request: Request, call: Call) -> Response:
        """`allPurgeRequests`: one keyset-paginated page of every open request."""
        await self.authorizer.authorize(request, call, "purge-cache:all-purge-requests")
        query = parse_query(request.query, ("continuationToken", "limit"))
        limit_text = query.get("limit", "1000")
        if not limit_text.isdigit() or not limit_text.isascii() or int(limit_text) == 0:
            raise ApiError(
                "InvalidRequestArguments",
                f"Invalid query-string parameter limit={limit_text!r}: must be an integer >= 1",
            )
        token = query.get("continuationToken")
        if token is not None and not token.strip("\r\n"):
            raise ApiError(
                "InvalidRequestArguments", "Invalid query-string parameter continuationToken"
            )
        try:
            body = await self.service.list_json(token, int(limit_text))
        except InvalidContinuationToken as error:
            raise ApiError("InputError", "invalid continuation token") from error
        return self._maybe_gzip(request, json_response(200, body))

    def _maybe_gzip(self, request: Request, response: Response) -> Response:
        if len(response.body) < GZIP_MIN_BYTES or not accepts_gzip(
            request.headers.get("accept-encoding", "")
        ):
            return response
        response.body = self._gzip(response.body)
        response.headers += _GZIP_HEADERS
        return response

    def _gzip(self, body: bytes) -> bytes:
        """gzip of an answer; the last few compressed answers are kept (a pool's answer is
        one bytes object for as long as it is cached, and every worker of a fleet asks for
        it: compress it once, not once per request)."""
        if len(body) > GZIP_KEEP_MAX_BYTES:
            return gzip.compress(body, compresslevel=5, mtime=0)
        packed = self._gzipped.get(body)
        if packed is None:
            packed = self._gzipped[body] = gzip.compress(body, compresslevel=5, mtime=0)
            if len(self._gzipped) > GZIP_KEEP:
                del self._gzipped[next(iter(self._gzipped))]  # the oldest
        return packed

"""The application: ASGI and RSGI entry points around one `respond` and one `finish`, the paths
outside the API base, the lifespan, and what handlers use of the application.

`a%2Fb` and `a/b` both reach the pool `a/b`. Under ASGI routing sees the raw path and Hawk
exactly what the client signed; RSGI hands over the decoded path, from which the signed
request target is rebuilt (`Request.resources`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine, Mapping
from typing import Any

import orjson

from purgecache.api import handlers, reference
from purgecache.api.authorization import BAD_MAC, Authorizer, bad_mac_hint
from purgecache.api.endpoints import ENDPOINTS, Endpoint, EndpointTable
from purgecache.api.handlers import Answer
from purgecache.api.pipeline import NOT_FOUND, Pipeline, as_api_error
from purgecache.api.request import BodyDeadlines, Call, Receive, Request, asgi_chunks
from purgecache.api.responses import (
    PAGE_CSP,
    PAGE_HEADERS,
    Headers,
    Response,
    json_response,
    new_id,
)
from purgecache.auth.authenticators import Authenticator
from purgecache.auth.scopes import ScopeExpression
from purgecache.logs import AccessLine, LineBatcher, log_event
from purgecache.metrics import CONTENT_TYPE, Metrics
from purgecache.model import PurgeRequest, format_time
from purgecache.service import PurgeService
from purgecache.storage import StorageError
from purgecache.web import StaticFiles

Send = Callable[[Mapping[str, Any]], Awaitable[None]]

access_log = logging.getLogger("purgecache.access")
audit_log = logging.getLogger("purgecache.audit")
log = logging.getLogger("purgecache")

ROBOTS = b"User-Agent: *\nDisallow: /\n"
# Access lines are written at most this long after their request, in one write per batch (as
# nginx's `access_log ... flush=`): a write per event-loop turn cost more than the lines.
ACCESS_LOG_DELAY = 0.1
MAX_ACCESS_LINES = 256  # or as soon as this many wait (a batch's encoding pauses the loop)
FETCH_FLUSH_INTERVAL = 1.0  # seconds between writes of the fetches noted in memory
TARGETS_WAIT = 5.0  # seconds start-up waits for the registration of the event targets
API_BASE = "/api/purge-cache/v1/"
_BASE_LENGTH = len(API_BASE)


class PurgeCacheApp:
    """The purge-cache HTTP API as an ASGI and an RSGI application."""

    def __init__(
        self,
        service: PurgeService,
        authenticator: Authenticator,
        *,
        root_url: str,
        version: Mapping[str, str],
        max_body_bytes: int,
        body_timeout_ms: int = 30_000,
        expire_interval_ms: int = 3_600_000,
        access_log_enabled: bool = True,
        trust_proxy: bool = False,
        on_shutdown: Callable[[], Awaitable[None]] | None = None,
        background: tuple[Callable[[], Coroutine[Any, Any, None]], ...] = (),
        metrics: Metrics | None = None,
        endpoints: tuple[Endpoint, ...] = ENDPOINTS,
        events_enabled: bool = False,
    ) -> None:
        self.service = service
        self.authorizer = Authorizer(authenticator, lambda: self.service.clock(), trust_proxy)
        self.expire_interval_ms = expire_interval_ms
        self.access_log_enabled = access_log_enabled
        self._access_lines = LineBatcher(
            access_log, delay=ACCESS_LOG_DELAY, max_lines=MAX_ACCESS_LINES
        )
        self._audit_lines = LineBatcher(audit_log)
        self._client_ip = self.authorizer.client_ip
        self.on_shutdown = on_shutdown
        self.metrics = metrics or Metrics()
        self.events_enabled = events_enabled
        service.on_cache_hit = self.metrics.cache_hit
        service.on_cache_miss = self.metrics.cache_miss
        self.started = time.monotonic()
        self.version_body = orjson.dumps(dict(version))
        self.documents = reference.documents(root_url, endpoints)
        self.web = StaticFiles()
        self.pipeline = Pipeline(
            EndpointTable(endpoints),
            self.authorizer,
            self,
            root_url=root_url,
            max_body_bytes=max_body_bytes,
            clock=lambda: self.service.clock(),
            body_deadlines=BodyDeadlines(body_timeout_ms / 1000),
        )
        self.background = (
            self._expire_slow_bodies_periodically,
            self._expire_periodically,
            self._flush_metrics_periodically,
            self._flush_fetches_periodically,
            *background,
        )
        self._tasks: list[asyncio.Task[None]] = []

    # ---- transports: ASGI and RSGI around one `respond` and `finish` ---------------------

    async def __call__(self, scope: Mapping[str, Any], receive: Receive, send: Send) -> None:
        """ASGI: requests and the lifespan protocol."""
        if scope["type"] == "http":
            request = Request.from_asgi(scope)
            call, started = Call(), time.perf_counter()
            answer = self.respond(request, asgi_chunks(receive), call)
            response = answer if isinstance(answer, Response) else await answer
            status, headers, body = self.finish(request, call, response, started)
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
        request = Request.from_rsgi(scope)
        request.read_whole = protocol
        call, started = Call(), time.perf_counter()
        answer = self.respond(request, protocol, call)
        response = answer if isinstance(answer, Response) else await answer
        status, headers, body = self.finish(request, call, response, started)
        if status == 204:
            protocol.response_empty(204, headers)
        else:
            protocol.response_bytes(status, headers, body)

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """RSGI: called in the worker before it serves (the loop is not running yet)."""
        loop.run_until_complete(self.startup())

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        """RSGI: called in the worker after it stopped serving."""
        loop.run_until_complete(self.shutdown())

    def respond(self, request: Request, chunks: AsyncIterable[bytes], call: Call) -> Answer:
        """The response to one request (the pipeline under the API base: its fast path, else
        all its steps; `_root` elsewhere); `call` learns the endpoint and the caller."""
        path = request.path
        if path.startswith(API_BASE):
            sub = path[_BASE_LENGTH:]
            answer = self.pipeline.answer_now(request, sub, call)
            return self.pipeline.answer(request, chunks, sub, call) if answer is None else answer
        return self._root(request, path, call)

    def finish(
        self, request: Request, call: Call, response: Response, started: float
    ) -> tuple[int, Headers, bytes]:
        """Status, every header and the body to send; counted in the metrics and written to
        the access log."""
        request_id = new_id()
        api = request.path.startswith(API_BASE)
        headers, body = self.pipeline.render(request, call, response, api, request_id)
        status = response.status
        elapsed = time.perf_counter() - started
        self.metrics.observe_request(call.name, status, elapsed, call.fast and status < 300)
        lines = self._access_lines.lines  # LineBatcher.add, inline: paid on every request
        if self.access_log_enabled and (lines or self._access_lines.begin()):
            verdict = call.verdict
            lines.append(
                AccessLine(
                    request.method,
                    call.name,
                    status,
                    (elapsed * 1e6 + 6755399441055744.0 - 6755399441055744.0) / 1000,  # round_ms
                    call.client_id,
                    self._client_ip(request),
                    request_id,
                    bad_mac_hint(request)
                    if status == 401 and verdict is not None and verdict.message == BAD_MAC
                    else None,
                )
            )
            if len(lines) >= MAX_ACCESS_LINES:  # a full batch: written now
                self._access_lines.flush()
        return status, headers, b"" if request.method == "HEAD" else body

    # ---- outside the API base ----------------------------------------------------------

    async def _root(self, request: Request, path: str, call: Call) -> Response:
        try:
            return await self._outside_api(request, path, call)
        except Exception as error:
            return self.pipeline.error(as_api_error(error, call), request, call)

    async def _outside_api(self, request: Request, path: str, call: Call) -> Response:
        if path == "/robots.txt":
            return Response(200, ROBOTS, (("content-type", "text/plain; charset=utf-8"),))
        if request.method not in ("GET", "HEAD"):
            return NOT_FOUND
        if path == "/__lbheartbeat__":
            return json_response(200, b"{}")
        if path == "/__version__":
            return json_response(200, self.version_body)
        if path == "/__heartbeat__":
            call.name = "heartbeat"
            return await handlers.heartbeat(self, request, call)
        if path == "/metrics":
            return await self.prometheus()
        document = self.documents.get(path)
        if document is not None:
            return json_response(200, document, ("access-control-allow-origin", "*"))
        page = self.web.lookup(path)
        if page is not None:
            headers = (("content-type", page[0]), ("cache-control", "no-cache"), *PAGE_HEADERS)
            return Response(200, page[1], headers, PAGE_CSP)
        return NOT_FOUND

    async def prometheus(self) -> Response:
        """`/metrics`: Prometheus exposition, with the open requests counted now."""
        try:
            open_requests: int | None = await self.service.count_open()
        except StorageError:
            self.metrics.storage_errors.inc()
            open_requests = None
        outbox: tuple[int, int] | None = None
        if self.events_enabled:
            try:
                outbox = await self.service.outbox_depth()
            except StorageError:
                self.metrics.storage_errors.inc()
        body = self.metrics.render(open_requests, outbox)
        return Response(200, body, (("content-type", CONTENT_TYPE),))

    # ---- what handlers use (handlers.Deps) ---------------------------------------------

    def uptime(self) -> float:
        """Seconds since this process started serving."""
        return time.monotonic() - self.started

    def audit_purge(self, client_id: str | None, purge: PurgeRequest) -> None:
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

    def check_scopes(self, call: Call, required: ScopeExpression | None) -> None:
        assert call.verdict is not None  # the pipeline authenticated the call
        self.authorizer.check(call.verdict, required)

    def client_ip(self, request: Request) -> str | None:
        """The caller's address (X-Forwarded-For only with --trust-proxy)."""
        return self.authorizer.client_ip(request)

    # ---- lifespan ----------------------------------------------------------------------

    async def startup(self) -> None:
        """Register this process's event targets (waiting up to TARGETS_WAIT), then start
        background work: change notifications, periodic expiry, metrics flushes and the
        `background` coroutines given."""
        await self.service.start()
        await self._register_event_targets()
        self._tasks = [asyncio.create_task(work()) for work in self.background]

    async def _register_event_targets(self) -> None:
        """Before the first request, so that none waits for it; with the database away or
        slow the service starts all the same, its writes waiting for the registration (or
        refused) until the dispatcher or a write completes it (events/targets.py)."""
        try:
            await asyncio.wait_for(self.service.targets.ensure(), TARGETS_WAIT)
        except (StorageError, TimeoutError) as error:
            why = str(error) or f"not registered within {TARGETS_WAIT:g} s"
            log_event(log, logging.WARNING, "event-targets-failed", error=why)

    async def shutdown(self) -> None:
        """Stop background work and release storage."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.metrics.flush()
        self._access_lines.flush()
        self._audit_lines.flush()
        if self.on_shutdown is not None:
            await self.on_shutdown()

    async def _expire_slow_bodies_periodically(self) -> None:
        """Refuse the bodies that are late (408), checking a few times per timeout."""
        deadlines = self.pipeline.body_deadlines
        interval = min(1.0, deadlines.seconds / 4)
        while True:
            await asyncio.sleep(interval)
            deadlines.expire(time.monotonic())

    async def _flush_metrics_periodically(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.metrics.flush()

    async def _flush_fetches_periodically(self) -> None:
        """Write the `purgeRequests` fetches noted in memory, one transaction a second."""
        while True:
            await asyncio.sleep(FETCH_FLUSH_INTERVAL)
            try:
                await self.service.flush_fetches()
            except StorageError as error:
                self.metrics.storage_errors.inc()
                log_event(log, logging.WARNING, "fetch-flush-failed", error=str(error))

    async def _expire_periodically(self) -> None:
        while True:
            try:
                removed = await self.service.expire()
                if removed is not None:
                    self.metrics.expiry_runs.inc()
                    self.metrics.expired_rows.inc(removed)
                    settled = await self.service.settle()
                    pruned = await self.service.prune_history()
                    workers = await self.service.prune_workers()
                    log_event(
                        log,
                        logging.INFO,
                        "expired",
                        rows=removed,
                        settled=settled,
                        history_rows=pruned,
                        worker_rows=workers,
                    )
            except StorageError as error:
                self.metrics.storage_errors.inc()
                log_event(log, logging.WARNING, "expiry-failed", error=str(error))
            await asyncio.sleep(self.expire_interval_ms / 1000)

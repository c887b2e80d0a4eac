"""`AsyncPurgeCache`: the asyncio twin of `PurgeCache`, a thin shell of `httpx.AsyncClient`
I/O over the same `ClientCore`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import TypeVar, Unpack

import httpx

from purgecache.client import _calls
from purgecache.client._base import BaseClient
from purgecache.client._calls import Call, HistoryQuery
from purgecache.client._core import Reply, Sleep
from purgecache.client._models import (
    CacheInventory,
    CacheReceipt,
    CancelledSelector,
    OpenAllPurgeRequestsList,
    OpenPurgeRequestList,
    Ping,
    PoolCaches,
    PoolSelectors,
    PurgeEvent,
    PurgeHistory,
    PurgeStatus,
    SelectorPurge,
    Version,
)

T = TypeVar("T")


class AsyncPurgeCache(BaseClient[httpx.AsyncClient]):
    """Client of the Taskcluster purge-cache service (asyncio); the methods of `PurgeCache`.

    async with AsyncPurgeCache.from_env() as pc:
        await pc.purge_cache("proj-a/linux", "checkouts")
        async for page in pc.all_purge_requests_pages(): ...
    """

    def _new_http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient()

    async def _send(self, step: httpx.Request | Sleep) -> Reply | None:
        if isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
            return None
        try:
            return await self._http.send(step, auth=None, follow_redirects=False)
        except httpx.TransportError as error:
            return error

    async def _run(self, call: Call[T]) -> T:
        exchange = self._core.exchange(call)
        step = next(exchange)
        while True:
            try:
                step = exchange.send(await self._send(step))
            except StopIteration as done:
                result: T = done.value
                return result

    async def ping(self) -> Ping:
        """Whether the service is alive, and since how long."""
        return await self._run(_calls.ping())

    async def heartbeat(self) -> Mapping[str, object]:
        """The service and its database answer (an error, 503, when the database does not)."""
        return await self._run(_calls.heartbeat())

    async def lbheartbeat(self) -> Mapping[str, object]:
        """The service process answers (for load balancers)."""
        return await self._run(_calls.lbheartbeat())

    async def version(self) -> Version:
        """The deployment's version object."""
        return await self._run(_calls.version())

    async def purge_cache(
        self,
        worker_pool_id: str,
        cache_name: str,
        *,
        reason: str | None = None,
        link: str | None = None,
        until_applied: bool | None = None,
    ) -> None:
        """Ask the workers of `worker_pool_id` to throw away their caches named `cache_name`.

        Needs the scope `purge-cache:<worker_pool_id>:<cache_name>`. With a `reason` or a
        `link` (or `until_applied`) the purge goes through `create_purge`, which keeps them in
        the history (a service without it raises ExtensionUnavailable, and nothing is purged).
        """
        if reason is None and link is None and until_applied is None:
            await self._run(_calls.purge_cache(worker_pool_id, cache_name))
        else:
            await self.create_purge(
                worker_pool_id, cache_name, reason=reason, link=link, until_applied=until_applied
            )

    async def create_purge(
        self,
        worker_pool_id: str,
        cache_name: str,
        *,
        reason: str | None = None,
        link: str | None = None,
        until_applied: bool | None = None,
    ) -> PurgeEvent:
        """`purge_cache` saying why (`reason`, at most 1,000 characters) and where to read more
        (`link`, an absolute http(s) URL); with `until_applied` (None: the service's
        default) kept past the retention until every active worker applied it. The event the
        history recorded (extension)."""
        call = _calls.create_purge(worker_pool_id, cache_name, reason, link, until_applied)
        return await self._run(call)

    async def cancel_purge(
        self, worker_pool_id: str, cache_name: str, *, reason: str | None = None
    ) -> datetime:
        """Withdraw the open purge of `cache_name` on the pool (workers stop receiving it);
        its `before`. Needs the scope `purge-cache:<worker_pool_id>:<cache_name>`; no open
        purge is an ApiError (404, ResourceNotFound) (extension)."""
        return await self._run(_calls.cancel_purge(worker_pool_id, cache_name, reason))

    async def create_selector_purge(
        self,
        worker_pool_pattern: str,
        cache_name_pattern: str,
        *,
        dry_run: bool = False,
        digest: str | None = None,
        reason: str | None = None,
        link: str | None = None,
        until_applied: bool | None = None,
    ) -> SelectorPurge:
        """Expand a selector into the (pool, cache name) pairs the service knows; show them
        (`dry_run`) or purge them all (`digest`: the dry run's, needed above the service's
        confirm threshold; another set now is a 409), each kept until applied with
        `until_applied` (None: the service's default) (extension)."""
        call = _calls.create_selector_purge(
            worker_pool_pattern,
            cache_name_pattern,
            dry_run=dry_run,
            digest=digest,
            reason=reason,
            link=link,
            until_applied=until_applied,
        )
        return await self._run(call)

    async def cancel_selector_purge(
        self, worker_pool_pattern: str, cache_name_pattern: str, *, reason: str | None = None
    ) -> CancelledSelector:
        """Withdraw an applied selector (agents stop applying it) and the open purges it
        wrote; needs the scopes applying it does; not open is an ApiError (404,
        ResourceNotFound) (extension)."""
        call = _calls.cancel_selector_purge(worker_pool_pattern, cache_name_pattern, reason)
        return await self._run(call)

    async def list_pool_selectors(
        self, worker_pool_id: str, since: datetime | str | None = None
    ) -> PoolSelectors:
        """The applied selectors matching the pool, newest first, with `before` at or after
        `since` (extension; scope `purge-cache:purge-requests::<worker_pool_id>`)."""
        return await self._run(_calls.list_pool_selectors(worker_pool_id, since))

    async def report_worker_sync(
        self,
        worker_pool_id: str,
        worker_group: str,
        worker_id: str,
        caches: Sequence[CacheReceipt] = (),
        inventory: Sequence[CacheInventory] | None = None,
    ) -> None:
        """Tell the service what this worker did about its pool's purges (extension; scope
        `purge-cache:report::<worker_pool_id>:<worker_group>/<worker_id>`); `inventory`, when
        given, replaces what the service knows the worker holds. Idempotent."""
        call = _calls.report_worker_sync(worker_pool_id, worker_group, worker_id, caches, inventory)
        await self._run(call)

    async def list_purge_history(
        self, worker_pool_id: str | None = None, **query: Unpack[HistoryQuery]
    ) -> PurgeHistory:
        """One page of the purge history, newest first, with the total the filters match
        (extension): `cache_name`, `client_id`, `since`, `until` (datetimes or API times),
        `continuation_token`, `limit`. Scope `purge-cache:history::<worker_pool_id>`, or
        `purge-cache:history::*` without a pool."""
        return await self._run(_calls.list_purge_history(worker_pool_id, **query))

    async def purge_status(self, worker_pool_id: str, cache_name: str | None = None) -> PurgeStatus:
        """Each open purge of the pool (or of `cache_name`) and how far its active workers
        got (extension; scope `purge-cache:history::<worker_pool_id>`)."""
        return await self._run(_calls.purge_status(worker_pool_id, cache_name))

    async def pool_caches(self, worker_pool_id: str) -> PoolCaches:
        """The cache names the pool's active workers hold, with how many hold each and their
        total size (extension; scope `purge-cache:history::<worker_pool_id>`)."""
        return await self._run(_calls.pool_caches(worker_pool_id))

    async def all_purge_requests(
        self, continuation_token: str | None = None, limit: int | None = None
    ) -> OpenAllPurgeRequestsList:
        """One page of every open purge request (scope `purge-cache:all-purge-requests`)."""
        return await self._run(_calls.all_purge_requests(continuation_token, limit))

    async def all_purge_requests_pages(
        self, limit: int | None = None
    ) -> AsyncIterator[OpenAllPurgeRequestsList]:
        """Every page of `all_purge_requests`, fetched as you iterate."""
        token: str | None = None
        while True:
            page = await self.all_purge_requests(token, limit)
            yield page
            token = _calls.next_page_token(token, page)
            if token is None:
                return

    async def purge_requests(
        self, worker_pool_id: str, since: datetime | str | None = None, observer: bool = False
    ) -> OpenPurgeRequestList:
        """The open purge requests of a worker pool, those from `since` on if given;
        `observer=True` when not asked as a worker of the pool (see the sync client)."""
        return await self._run(_calls.purge_requests(worker_pool_id, since, observer))

    async def aclose(self) -> None:
        """Release the connections (not those of an `http_client` you passed in)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncPurgeCache:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

"""Asking the service for a pool's purge requests: one `purgeRequests` call through
`purgecache.client`, configured by the `TASKCLUSTER_*` variables, reading the answer's `Date`
header to learn the service's clock (the client does not expose headers, so an httpx event
hook on the client's own connection pool observes them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import httpx

from purgecache.agent.clock import ClockAnchor, SystemClock, WorkerClock, measure, parse_http_date
from purgecache.agent.deadline import within
from purgecache.agent.errors import FetchFailed, ServiceRefused, ServiceUnreachable
from purgecache.agent.selectors import LocalSelector
from purgecache.agent.settings import DEFAULT_TIMEOUT_MS
from purgecache.client import (
    ApiError,
    ConfigurationError,
    ConnectionFailed,
    InvalidResponse,
    PurgeCache,
    Retries,
    ServerError,
)
from purgecache.model import format_time, to_ms

# A pre-task hook should not wait long for an unreachable service: 4 attempts over about a
# second, each bounded by the timeout; the daemon retries further with its own back-off.
FETCH_RETRIES = Retries(max_retries=3, base_delay=0.2, max_delay=5.0)
DEFAULT_TIMEOUT_S = DEFAULT_TIMEOUT_MS / 1000
__all__ = [
    "Fetch",
    "FetchFailed",
    "Fetched",
    "ServiceFetcher",
    "ServiceRefused",
    "ServiceUnreachable",
]


@dataclass(frozen=True, slots=True)
class Fetched:
    """A pool's open purge requests `(cache_name, before)` and what the answer said about
    the service's clock."""

    requests: tuple[tuple[str, int], ...]
    service_date: int | None  # ms: the answer's Date header (whole seconds)
    anchor: ClockAnchor | None


class Fetch(Protocol):
    """Whatever fetches purge requests (tests pass a fake)."""

    def __call__(self, pool: str, since: int | None) -> Fetched:
        """The open purge requests of `pool` with `before >= since` (all if None)."""


class _Observed:
    """The monotonic times of the last request and answer, and the answer's Date."""

    def __init__(self, clock: WorkerClock) -> None:
        self.clock = clock
        self.sent_ns = self.received_ns = 0
        self.date: str | None = None

    def request(self, request: httpx.Request) -> None:
        self.sent_ns = self.clock.elapsed_ns()

    def response(self, response: httpx.Response) -> None:
        self.received_ns = self.clock.elapsed_ns()
        dates = response.headers.get_list("date")  # a proxy may add a second one
        self.date = dates[0] if dates else None


class ServiceFetcher:
    """Fetches from the deployment the `TASKCLUSTER_*` variables name (`environ`, default
    the process environment), our service or an upstream Taskcluster one. Each attempt waits
    up to `timeout_s` per phase; `deadline_s` bounds a whole fetch, retries included (main
    thread only, see `deadline.py`)."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: Retries = FETCH_RETRIES,
        clock: WorkerClock | None = None,
        deadline_s: float | None = None,
    ) -> None:
        self.clock: WorkerClock = clock or SystemClock()
        self._deadline_s = deadline_s
        self._observed = _Observed(self.clock)
        hooks: dict[str, list[Callable[..., Any]]] = {
            "request": [self._observed.request],
            "response": [self._observed.response],
        }
        self._http = httpx.Client(event_hooks=hooks)
        try:
            self._client = PurgeCache.from_env(
                environ, http_client=self._http, retries=retries, timeout=timeout_s
            )
        except ConfigurationError as error:
            self._http.close()
            raise ServiceRefused(str(error)) from error

    @property
    def root_url(self) -> str:
        return self._client.root_url

    def __call__(self, pool: str, since: int | None) -> Fetched:
        self._observed.date = None
        try:
            with within(self._deadline_s, f"purgeRequests of {pool}"):
                answer = self._client.purge_requests(
                    pool, None if since is None else format_time(since)
                )
        except (ConnectionFailed, ServerError, InvalidResponse) as error:
            raise ServiceUnreachable(str(error)) from error
        except ApiError as error:
            raise ServiceRefused(error.summary) from error
        requests = tuple((entry.cache_name, to_ms(entry.before)) for entry in answer.requests)
        date = parse_http_date(self._observed.date)
        anchor = None
        if date is not None:
            anchor = measure(
                date, self._observed.sent_ns, self._observed.received_ns, self.clock.boot_id()
            )
        return Fetched(requests, date, anchor)

    def selectors(self, pool: str) -> tuple[LocalSelector, ...]:
        """The open selectors matching `pool` (`listPoolSelectors`), as (cache-name pattern,
        before, cache names withdrawn), newest first; the client's errors as it raises them."""
        with within(self._deadline_s, f"listPoolSelectors of {pool}"):
            answer = self._client.list_pool_selectors(pool)
        return tuple(
            LocalSelector(s.cache_name_pattern, to_ms(s.before), frozenset(s.except_cache_names))
            for s in answer.selectors
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ServiceFetcher:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

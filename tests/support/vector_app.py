"""A granian factory for the vector tests: the real purge-cache app with a per-request clock.

Run it as `python -m granian --interface asgi|rsgi --factory support.vector_app:app` with `tests/`
on PYTHONPATH and `$PURGECACHE_VECTOR_SETTINGS` holding resolved `Settings` JSON (the database
already upgraded, e.g. by `purgecache.server.prepare`).

The clock is injected without touching production code: `PurgeService.clock` is a plain
attribute, replaced here by a function that reads a context variable; the middleware sets that
variable from the `X-Test-Now-Ms` request header for the duration of that request only (each
ASGI request runs in its own task, and the variable is reset afterwards). Requests without the
header, and background work such as the periodic expiry, see the wall clock.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import asdict
from pathlib import Path
from typing import Any

from purgecache.api.app import PurgeCacheApp
from purgecache.auth.authenticators import LocalAuthenticator
from purgecache.auth.clients import load_clients
from purgecache.server import build_app, configure_logging
from purgecache.service import wall_clock_ms
from purgecache.settings import Settings

SETTINGS_ENV = "PURGECACHE_VECTOR_SETTINGS"
NOW_HEADER = b"x-test-now-ms"

Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]

_now_ms: ContextVar[int | None] = ContextVar("purgecache_test_now_ms", default=None)


def request_clock() -> int:
    """The clock the current request asked for, else the wall clock (ms since the epoch)."""
    now = _now_ms.get()
    return wall_clock_ms() if now is None else now


class ClockFromHeader:
    """ASGI middleware: run each HTTP request with the clock its `X-Test-Now-Ms` header names."""

    def __init__(self, inner: PurgeCacheApp) -> None:
        self.inner = inner
        self.service = inner.service
        inner.service.clock = request_clock

    async def __call__(self, scope: Mapping[str, Any], receive: Receive, send: Send) -> None:
        """Set the request's clock (if it names one) around the real app."""
        now = None
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name.lower() == NOW_HEADER:
                    now = int(value)
        token = _now_ms.set(now)
        try:
            await self.inner(scope, receive, send)
        finally:
            _now_ms.reset(token)

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        """The same for granian's RSGI interface."""
        value = scope.headers.get(NOW_HEADER.decode())
        token = _now_ms.set(int(value) if value is not None else None)
        try:
            await self.inner.__rsgi__(scope, protocol)
        finally:
            _now_ms.reset(token)

    def __rsgi_init__(self, loop: Any) -> None:
        self.inner.__rsgi_init__(loop)

    def __rsgi_del__(self, loop: Any) -> None:
        self.inner.__rsgi_del__(loop)


def settings_json(settings: Settings) -> str:
    """Settings for `$PURGECACHE_VECTOR_SETTINGS` (this granian is started by its own CLI)."""
    return json.dumps(asdict(settings))


def app() -> ClockFromHeader:
    """granian's factory: the real app from `$PURGECACHE_VECTOR_SETTINGS`, clock injectable."""
    settings = Settings(**json.loads(os.environ[SETTINGS_ENV]))
    configure_logging()
    return ClockFromHeader(
        build_app(settings, LocalAuthenticator(load_clients(Path(settings.clients_file))))
    )

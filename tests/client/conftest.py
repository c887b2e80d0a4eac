"""Fixtures of the client tests: clients of both kinds against the live server, and a small
real HTTP server that misbehaves on purpose (`FlakyServer`)."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from client.flaky_server import FlakyServer
from purgecache.client import AsyncPurgeCache, Credentials, PurgeCache

from conftest import ADMIN, LiveServer

ADMIN_CREDENTIALS = Credentials(*ADMIN)


async def _collect(pages: AsyncIterator[Any]) -> list[Any]:
    return [page async for page in pages]


class Blocking:
    """An `AsyncPurgeCache` driven from plain test code, every call on one event loop, so
    that one scenario runs unchanged against both clients."""

    def __init__(self, client: AsyncPurgeCache) -> None:
        self.client = client
        self.runner = asyncio.Runner()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        if inspect.isasyncgenfunction(attribute):
            return lambda *args, **kwargs: self.runner.run(_collect(attribute(*args, **kwargs)))
        if inspect.iscoroutinefunction(attribute):
            return lambda *args, **kwargs: self.runner.run(attribute(*args, **kwargs))
        return attribute

    def close(self) -> None:
        self.runner.run(self.client.aclose())
        self.runner.close()


MakeClient = Callable[..., Any]


@pytest.fixture(params=["sync", "async"])
def client_factory(request: pytest.FixtureRequest) -> Iterator[MakeClient]:
    """Make `PurgeCache` (sync) or `Blocking(AsyncPurgeCache)` (async) clients of
    `root_url`, so that each scenario runs with both; all are closed after the test."""
    made: list[Any] = []

    def make(
        credentials: Credentials | None = ADMIN_CREDENTIALS, *, root_url: str, **options: Any
    ) -> Any:
        if request.param == "sync":
            client: Any = PurgeCache(root_url, credentials, **options)
        else:
            client = Blocking(AsyncPurgeCache(root_url, credentials, **options))
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def make_client(client_factory: MakeClient, server: LiveServer) -> MakeClient:
    """Like `client_factory`, for the module's live server unless `root_url` is given."""

    def make(
        credentials: Credentials | None = ADMIN_CREDENTIALS,
        *,
        root_url: str | None = None,
        **options: Any,
    ) -> Any:
        return client_factory(credentials, root_url=root_url or server.root_url, **options)

    return make


@pytest.fixture
def pool() -> str:
    """A worker pool id no other test uses."""
    return f"p-{uuid.uuid4().hex[:12]}/linux"


@pytest.fixture
def flaky() -> Iterator[Callable[..., FlakyServer]]:
    """Start `FlakyServer`s; all are stopped after the test."""
    started: list[FlakyServer] = []

    def start(*args: Any, **kwargs: Any) -> FlakyServer:
        flaky_server = FlakyServer(*args, **kwargs)
        started.append(flaky_server)
        return flaky_server

    yield start
    for flaky_server in started:
        flaky_server.stop()

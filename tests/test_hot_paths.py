"""The RSGI hot paths, in process: a bug in one is logged and the general path still answers
(with a Taskcluster-shaped reply, never granian's bare 500)."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from purgecache.api.app import PurgeCacheApp
from purgecache.server import authenticator_for, build_app
from purgecache.settings import Settings
from purgecache.storage import open_storage

from conftest import ADMIN, CLIENTS_TOML


class Headers(dict[str, str]):
    """What granian's RSGI headers offer: get, items, `in`."""


class Scope:
    def __init__(self, method: str, path: str, headers: dict[str, str]) -> None:
        self.method, self.path, self.query_string = method, path, ""
        self.headers = Headers(headers)
        self.scheme, self.client = "http", "127.0.0.1:40000"


class Protocol:
    """Records the reply; the body is read whole."""

    def __init__(self, body: bytes = b"") -> None:
        self.body = body
        self.status: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.content = b""

    async def __call__(self) -> bytes:
        return self.body

    def __aiter__(self) -> Any:
        async def chunks() -> Any:
            yield self.body

        return chunks()

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status, self.headers, self.content = status, headers, body

    def response_empty(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.status, self.headers = status, headers


def make_app(tmp_path: Path) -> PurgeCacheApp:
    clients = tmp_path / "clients.toml"
    clients.write_text(CLIENTS_TOML)
    settings = Settings(
        db_url=f"sqlite:///{tmp_path / 'db.sqlite'}", clients_file=str(clients), access_log=False
    )

    async def migrate() -> None:
        storage = open_storage(settings.db_url)
        await storage.upgrade()
        await storage.close()

    asyncio.run(migrate())
    return build_app(settings, authenticator_for(settings, clients))


def test_a_failing_hot_path_is_logged_and_the_general_path_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path)

    def broken(*args: object) -> None:
        raise RuntimeError("a bug in a hot path")

    monkeypatch.setattr(app, "_hot_ping", broken)
    monkeypatch.setattr(app, "_hot_purge_cache", broken)

    async def scenario() -> tuple[Protocol, Protocol]:
        await app.startup()
        ping = Protocol()
        await app.__rsgi__(Scope("GET", "/api/purge-cache/v1/ping", {"host": "x"}), ping)
        purge = Protocol(json.dumps({"cacheName": "c"}).encode())
        headers = {"host": "x", "content-type": "application/json", "content-length": "17"}
        scope = Scope("POST", "/api/purge-cache/v1/purge-cache/a/b", headers)
        await app.__rsgi__(scope, purge)  # no credentials: the general path's 403
        await app.shutdown()
        return ping, purge

    with caplog.at_level(logging.ERROR, logger="purgecache"):
        ping, purge = asyncio.run(scenario())
    assert ping.status == 200
    assert json.loads(ping.content)["alive"] is True
    assert purge.status == 403
    assert json.loads(purge.content)["code"] == "InsufficientScopes"
    failures = [r for r in caplog.records if "hot path failed" in r.getMessage()]
    assert len(failures) == 2
    assert ADMIN[1] not in caplog.text

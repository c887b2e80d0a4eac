"""The fast path, in process over RSGI: the common successes of ping, purgeRequests and
purgeCache take it (the counter says so), anything unusual does not, and a bug in a handler is
a Taskcluster-shaped 500 naming an incident, whatever path the request took."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import mohawk
import pytest

from purgecache.api.app import MAX_ACCESS_LINES, PurgeCacheApp
from purgecache.server import authenticator_for, build_app
from purgecache.settings import Settings
from purgecache.storage import StorageError, open_storage

from conftest import ADMIN, CLIENTS_TOML


class Headers(dict[str, str]):
    """What granian's RSGI headers offer: get, items, `in`."""


class Scope:
    def __init__(self, method: str, path: str, headers: dict[str, str], query: str = "") -> None:
        self.method, self.path, self.query_string = method, path, query
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


def make_app(tmp_path: Path, access_log: bool = False) -> PurgeCacheApp:
    clients = tmp_path / "clients.toml"
    clients.write_text(CLIENTS_TOML)
    settings = Settings(
        db_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        clients_file=str(clients),
        access_log=access_log,
    )

    async def migrate() -> None:
        storage = open_storage(settings.db_url)
        await storage.upgrade()
        await storage.close()

    asyncio.run(migrate())
    return build_app(settings, authenticator_for(settings, clients))


API = "/api/purge-cache/v1/"
HOST = "localhost:8080"


def signed(method: str, path: str, body: bytes = b"") -> tuple[Scope, Protocol]:
    content_type = "application/json" if body else ""
    sender = mohawk.Sender(
        {"id": ADMIN[0], "key": ADMIN[1], "algorithm": "sha256"},
        f"http://{HOST}{path.replace('/a/b', '/a%2Fb')}",
        method,
        content=body.decode(),
        content_type=content_type,
        ext="e30=",
    )
    authorization = sender.request_header
    base = {"host": HOST, "authorization": authorization}
    if body:
        base |= {"content-type": content_type, "content-length": str(len(body))}
    return Scope(method, path, base), Protocol(body)


def run(app: PurgeCacheApp, *exchanges: tuple[Scope, Protocol]) -> None:
    async def scenario() -> None:
        await app.startup()
        for scope, protocol in exchanges:
            await app.__rsgi__(scope, protocol)
        await app.shutdown()

    asyncio.run(scenario())


def test_the_common_successes_take_the_fast_path(tmp_path: Path) -> None:
    """ping, a signed purge and the pool's requests answer 2xx and count as fast answers;
    the same requests with a body quirk answer alike and do not count."""
    app = make_app(tmp_path)
    purge = signed("POST", f"{API}purge-cache/a/b", b'{"cacheName":"c"}')
    quirky_purge = signed("POST", f"{API}purge-cache/a/b", b'{"cacheName":"d"}')
    quirky_purge[0].headers["content-encoding"] = "identity"
    requests = signed("GET", f"{API}purge-cache/a/b")
    quirky_requests = signed("GET", f"{API}purge-cache/a/b")
    quirky_requests[0].headers["content-length"] = "0"
    ping = (Scope("GET", f"{API}ping", {"host": HOST}), Protocol())
    run(app, purge, quirky_purge, requests, quirky_requests, ping)
    assert [p.status for _, p in (purge, quirky_purge, requests, quirky_requests, ping)] == [
        204,
        204,
        200,
        200,
        200,
    ]
    assert requests[1].content == quirky_requests[1].content
    assert [e["cacheName"] for e in json.loads(requests[1].content)["requests"]] == ["c", "d"]
    fast = app.metrics.fast_path
    assert {name: fast.labels(name)._value.get() for name in ("purgeCache", "purgeRequests")} == {
        "purgeCache": 1,
        "purgeRequests": 1,
    }
    assert fast.labels("ping")._value.get() == 1


def test_a_refusal_is_not_a_fast_answer(tmp_path: Path) -> None:
    """A fast-path request that fails authorization is answered by the same steps (403) and
    is not counted."""
    app = make_app(tmp_path)
    anonymous = (Scope("GET", f"{API}purge-cache/a/b", {"host": HOST}), Protocol())
    run(app, anonymous)
    assert anonymous[1].status == 403
    assert app.metrics.fast_path.labels("purgeRequests")._value.get() == 0


def test_a_bug_in_a_handler_is_an_incident_not_a_traceback_for_the_caller(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception while handling a fast-path purge gives 500
    InternalServerError with an incident id that the error log line also carries."""
    app = make_app(tmp_path)

    async def broken(*args: object) -> None:
        raise RuntimeError("a bug with a secret inside: " + ADMIN[1])

    monkeypatch.setattr(app.service, "purge", broken)
    purge = signed("POST", f"{API}purge-cache/a/b", b'{"cacheName":"c"}')
    with caplog.at_level(logging.ERROR, logger="purgecache"):
        run(app, purge)
    assert purge[1].status == 500
    body = json.loads(purge[1].content)
    assert body["code"] == "InternalServerError"
    assert "secret" not in body["message"]
    incident = body["message"].split("incidentId ")[1].split(".")[0]
    assert any(incident in record.getMessage() for record in caplog.records)


def test_a_storage_failure_after_a_cache_miss_is_a_503(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the fast path's handler must read the database and it fails, the caller gets the
    general path's 503 ServiceUnavailable, not the server's bare 500."""
    app = make_app(tmp_path)

    async def down(*args: object) -> bytes:
        raise StorageError("the database went away")

    monkeypatch.setattr(app.service, "purge_requests_json", down)
    requests = signed("GET", f"{API}purge-cache/a/b")
    run(app, requests)
    assert requests[1].status == 503
    assert json.loads(requests[1].content)["code"] == "ServiceUnavailable"
    assert ("retry-after", "5") in requests[1].headers


def test_access_lines_are_written_by_the_full_batch_and_follow_the_logger_level(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The app queues its access lines as `LineBatcher.add` does (inline, for speed): a full
    batch is written at once, in order, without waiting for the delay; the rest at shutdown;
    with the access logger off nothing is queued at all."""
    pings = [(Scope("GET", f"{API}ping", {"host": HOST}), Protocol()) for _ in range(257)]

    async def scenario(app: PurgeCacheApp) -> list[list[str]]:
        await app.startup()
        for scope, protocol in pings:  # ping answers without awaiting: one turn of the loop
            await app.__rsgi__(scope, protocol)
        written = [r.getMessage().split("\n") for r in caplog.records if r.name == access.name]
        queued.append(len(app._access_lines.lines))
        await app.shutdown()
        return written

    access = logging.getLogger("purgecache.access")
    queued: list[int] = []  # lines waiting after the requests
    (tmp_path / "on").mkdir()
    (tmp_path / "off").mkdir()
    caplog.set_level(logging.INFO, logger=access.name)
    (batch,) = asyncio.run(scenario(make_app(tmp_path / "on", access_log=True)))
    sent = [dict(p.headers)["x-for-request-id"] for _, p in pings]
    assert len(batch) == MAX_ACCESS_LINES and len(pings) > MAX_ACCESS_LINES
    assert [json.loads(line)["request_id"] for line in batch] == sent[:MAX_ACCESS_LINES]
    last = [r.getMessage() for r in caplog.records if r.name == access.name][-1]
    assert json.loads(last)["request_id"] == sent[-1]  # the rest: at shutdown

    caplog.clear()
    caplog.set_level(logging.WARNING, logger=access.name)
    assert asyncio.run(scenario(make_app(tmp_path / "off", access_log=True))) == []
    assert [r for r in caplog.records if r.name == access.name] == []
    assert queued == [len(pings) - MAX_ACCESS_LINES, 0]

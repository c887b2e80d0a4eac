"""Authentication modes of a running service: delegation to a Taskcluster auth service,
reloading the clients file on SIGHUP, and --trust-proxy.
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ADMIN, CLIENTS_TOML, LiveServer
from hawk_signing import HawkAuth
from support.auth_service import AuthService

ServerFactory = Callable[..., LiveServer]
AUTH_PATH = "/api/auth/v1/authenticate-hawk"


class FakeAuthService(AuthService):
    """An auth service that answers by the Hawk id in the header without verifying it
    (`admin` -> success with `*`, `reader` -> success with read scopes, anything else ->
    `auth-failed`; no header -> `no-auth` with no scopes)."""

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        header = body.get("authorization")
        if header is None:
            return {
                "status": "no-auth",
                "scheme": "none",
                "scopes": [],
                "expires": "2030-01-01T00:00:00.000Z",
            }
        client_id = re.search(r'id="([^"]*)"', header)
        found = client_id[1] if client_id else ""
        scopes = {"admin": ["*"], "reader": ["purge-cache:purge-requests::*"]}.get(found)
        if scopes is None:
            return {"status": "auth-failed", "message": "Unauthorized: Bad mac"}
        answer = {
            "status": "auth-success",
            "scheme": "hawk",
            "clientId": found,
            "scopes": scopes,
            "expires": "2031-01-01T00:00:00.000Z",
        }
        payload_hash = re.search(r'hash="([^"]*)"', header)
        if payload_hash:
            answer["hash"] = payload_hash[1]
        return answer


@pytest.fixture
def fake_auth() -> Iterator[FakeAuthService]:
    service = FakeAuthService()
    yield service
    service.stop()


def test_remote_auth_delegates_every_verdict(
    server_factory: ServerFactory, fake_auth: FakeAuthService
) -> None:
    """With --auth-root-url the auth service's verdicts decide, and it gets the exact request."""
    live = server_factory("--auth-root-url", fake_auth.root_url, "--trust-proxy")
    url = f"{live.api}/purge-cache/proj-a%2Flinux"
    with httpx.Client(auth=HawkAuth("admin", "whatever-the-service-checks")) as admin:
        assert admin.post(url, json={"cacheName": "c"}).status_code == 204
        response = admin.get(url, headers={"X-Forwarded-For": "203.0.113.9"})
        assert [e["cacheName"] for e in response.json()["requests"]] == ["c"]
    body = fake_auth.bodies[-1]
    assert set(body) == {"method", "resource", "host", "port", "authorization", "sourceIp"}
    assert body["method"] == "get"
    assert body["resource"] == "/api/purge-cache/v1/purge-cache/proj-a%2Flinux"
    assert (body["host"], body["port"]) == ("127.0.0.1", live.port)
    assert body["sourceIp"] == "203.0.113.9"
    with httpx.Client(auth=HawkAuth("reader", "x")) as reader:
        denied = reader.post(url, json={"cacheName": "c"})
        assert denied.status_code == 403
        assert "Client ID reader does not have sufficient scopes" in denied.json()["message"]
    with httpx.Client(auth=HawkAuth("intruder", "x")) as intruder:
        refused = intruder.get(url)
        assert refused.status_code == 401
        assert refused.json()["message"].startswith("Unauthorized: Bad mac")
    anonymous = httpx.get(url)
    assert anonymous.status_code == 403
    assert "authorization" not in fake_auth.bodies[-1]


def test_remote_auth_still_checks_the_payload_hash(
    server_factory: ServerFactory, fake_auth: FakeAuthService
) -> None:
    """A body changed after signing fails even when the auth service accepted the header."""
    import mohawk

    live = server_factory("--auth-root-url", fake_auth.root_url)
    url = f"{live.api}/purge-cache/proj-a%2Flinux"
    sender = mohawk.Sender(
        {"id": "admin", "key": "k", "algorithm": "sha256"},
        url,
        "POST",
        content='{"cacheName":"a"}',
        content_type="application/json",
    )
    response = httpx.post(
        url,
        content=b'{"cacheName":"b"}',
        headers={"Authorization": sender.request_header, "Content-Type": "application/json"},
    )
    assert response.status_code == 401
    assert "Computed payload hash" in response.json()["message"]


def test_auth_service_outage_is_a_5xx_never_a_pass(
    server_factory: ServerFactory, fake_auth: FakeAuthService
) -> None:
    """An auth service answering 500, or not at all, gives 503 ServiceUnavailable."""
    live = server_factory("--auth-root-url", fake_auth.root_url)
    url = f"{live.api}/purge-cache/proj-a%2Flinux"
    fake_auth.status = 500
    with httpx.Client(auth=HawkAuth("admin", "x")) as admin:
        response = admin.post(url, json={"cacheName": "c"})
        assert response.status_code == 503
        assert response.json()["code"] == "ServiceUnavailable"
        assert response.headers["retry-after"]
        fake_auth.stop()
        response = admin.get(url)
        assert response.status_code == 503
        assert "ConnectError" not in response.json()["message"]  # no internals leak


def _write_clients(path: Path, extra: str) -> None:
    path.write_text(CLIENTS_TOML + extra)


def test_sighup_reloads_clients_without_dropping_requests(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """A new client works after SIGHUP; requests during the reload all succeed."""
    data = tmp_path / "data"
    data.mkdir()
    clients = data / "test-clients.toml"
    _write_clients(clients, "")
    live = server_factory(data_dir=data)
    newcomer = HawkAuth("newcomer", "newcomer-token-000")
    url = f"{live.api}/purge-cache/hup%2Fpool"
    assert httpx.get(url, auth=newcomer).status_code == 401
    _write_clients(
        clients,
        '\n[[clients]]\nclient_id = "newcomer"\naccess_token = '
        '"newcomer-token-000"\nscopes = ["purge-cache:purge-requests::*"]\n',
    )
    statuses: list[int | str] = []
    stop = threading.Event()

    def hammer() -> None:
        # A new connection per request, as many workers each asking once.
        while not stop.is_set():
            try:
                statuses.append(httpx.get(url, auth=HawkAuth(*ADMIN), timeout=10).status_code)
            except httpx.HTTPError as error:  # a dropped request: recorded, fails the test
                statuses.append(repr(error))

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        live.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while httpx.get(url, auth=newcomer).status_code != 200:
            assert time.monotonic() < deadline, live.log_text()
            time.sleep(0.2)
    finally:  # a failure must not leave the thread running (pytest would never exit)
        stop.set()
        thread.join(10)
    assert statuses and set(statuses) == {200}
    assert '"event":"clients-reloaded"' in live.log_text()


def test_sighup_with_broken_file_keeps_the_old_clients(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """A broken clients file on SIGHUP is logged and the old clients stay in force."""
    data = tmp_path / "data"
    data.mkdir()
    clients = data / "test-clients.toml"
    _write_clients(clients, "")
    live = server_factory(data_dir=data)
    clients.write_text("this is [not toml")
    live.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while '"clients-reload-failed"' not in live.log_text():
        assert time.monotonic() < deadline, live.log_text()
        time.sleep(0.1)
    response = httpx.get(f"{live.api}/purge-cache/list", auth=HawkAuth(*ADMIN))
    assert response.status_code == 200
    assert live.process.poll() is None


def test_forwarded_for_is_logged_only_with_trust_proxy(server_factory: ServerFactory) -> None:
    """Without --trust-proxy the log shows the socket address, not X-Forwarded-For."""
    live = server_factory()
    httpx.get(f"{live.api}/ping", headers={"X-Forwarded-For": "198.51.100.1"})
    live.stop()
    lines = [json.loads(x) for x in live.log_text().splitlines() if '"event":"request"' in x]
    assert lines[-1]["client_ip"] == "127.0.0.1"

"""Every request is authenticated once, whichever way it takes through the pipeline: counted
at a real `authenticateHawk` service (`--auth-root-url`), under both server interfaces."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from conftest import ADMIN, LIMITED, LiveServer
from hawk_signing import HawkAuth
from support.auth_service import VerifyingAuthService

ServerFactory = Callable[..., LiveServer]


@pytest.fixture
def auth_service() -> Iterator[VerifyingAuthService]:
    service = VerifyingAuthService()
    yield service
    service.stop()


@pytest.fixture(params=["rsgi", "asgi"])
def live(
    request: pytest.FixtureRequest,
    server_factory: ServerFactory,
    auth_service: VerifyingAuthService,
) -> LiveServer:
    return server_factory("--auth-root-url", auth_service.root_url, "--interface", request.param)


@pytest.fixture
def signed(live: LiveServer) -> Iterator[Callable[[tuple[str, str]], httpx.Client]]:
    """Hawk-signing clients for the live server, closed after the test."""
    opened: list[httpx.Client] = []

    def open_client(credentials: tuple[str, str]) -> httpx.Client:
        opened.append(httpx.Client(base_url=live.api, auth=HawkAuth(*credentials)))
        return opened[-1]

    yield open_client
    for client in opened:
        client.close()


Signed = Callable[[tuple[str, str]], httpx.Client]


def calls_for(service: VerifyingAuthService, send: Callable[[], httpx.Response]) -> tuple[int, int]:
    """The status of `send()` and how many authenticateHawk calls it caused."""
    before = service.calls()
    status = send().status_code
    return status, service.calls() - before


def test_a_success_costs_one_call(signed: Signed, auth_service: VerifyingAuthService) -> None:
    """A purge (204), a pool's requests and a listing (200): one authenticateHawk call each."""
    admin = signed(ADMIN)
    pool = "/purge-cache/once%2Fpool"
    assert calls_for(auth_service, lambda: admin.post(pool, json={"cacheName": "c"})) == (204, 1)
    assert calls_for(auth_service, lambda: admin.get(pool)) == (200, 1)
    assert calls_for(auth_service, lambda: admin.get("/purge-cache/list")) == (200, 1)
    assert calls_for(auth_service, lambda: admin.get(pool, headers={"Content-Length": "0"})) == (
        200,
        1,
    )


def test_a_refusal_costs_one_call(
    live: LiveServer, signed: Signed, auth_service: VerifyingAuthService
) -> None:
    """A 403, signed or anonymous, on the fast or the general path: one call."""
    limited = signed(LIMITED)
    pool = "/purge-cache/other%2Fpool"
    assert calls_for(auth_service, lambda: limited.post(pool, json={"cacheName": "c"})) == (403, 1)
    assert calls_for(auth_service, lambda: limited.get(pool)) == (403, 1)
    assert calls_for(auth_service, lambda: httpx.get(f"{live.api}/purge-cache/list")) == (403, 1)


def test_a_bad_signature_costs_one_call_per_spelling(
    live: LiveServer, signed: Signed, auth_service: VerifyingAuthService
) -> None:
    """A wrong access token is a 401 after one call under ASGI (the target as sent) and at
    most two under RSGI (the `%2F` and the literal-slash spellings of the pool)."""
    intruder = signed((ADMIN[0], "not-the-token"))
    status, calls = calls_for(auth_service, lambda: intruder.get("/purge-cache/bad%2Fmac"))
    assert status == 401
    assert calls == (1 if "asgi" in live.args else 2)
    status, calls = calls_for(auth_service, lambda: intruder.get("/purge-cache/list"))
    assert (status, calls) == (401, 1)


def test_a_seed_era_client_is_asked_about_once_after_its_first_request(
    live: LiveServer, signed: Signed, auth_service: VerifyingAuthService
) -> None:
    """Under RSGI the literal-slash spelling is the second guess only until it verified once
    for that client; under ASGI it is never a guess."""
    admin = signed(ADMIN)
    first = calls_for(auth_service, lambda: admin.get("/purge-cache/seed/era"))
    assert first == (200, 1 if "asgi" in live.args else 2)
    assert calls_for(auth_service, lambda: admin.get("/purge-cache/seed/era")) == (200, 1)
    # the client now signs the current spelling: its first such request is a second guess
    rsgi_guesses = 1 if "asgi" in live.args else 2
    assert calls_for(auth_service, lambda: admin.get("/purge-cache/seed%2Fera")) == (
        200,
        rsgi_guesses,
    )


def test_an_outage_is_one_failed_call(signed: Signed, auth_service: VerifyingAuthService) -> None:
    """While the auth service fails, a request waits for one failed call, never one per
    spelling: 503 with Retry-After."""
    auth_service.status = 500
    admin = signed(ADMIN)
    for path in ("/purge-cache/down%2Fpool", "/purge-cache/down/pool"):
        before = auth_service.calls()
        response = admin.get(path)
        assert (response.status_code, auth_service.calls() - before) == (503, 1)
        assert response.headers["retry-after"] == "5"


@pytest.mark.slow
def test_a_hung_auth_service_costs_one_timeout(
    server_factory: ServerFactory, auth_service: VerifyingAuthService
) -> None:
    """An auth service that does not answer holds a request for one timeout, not one per
    spelling of the pool (RSGI would otherwise try `%2F` and then `/`): 503 after ~10 s."""
    live = server_factory("--auth-root-url", auth_service.root_url, "--interface", "rsgi")
    auth_service.delay = 12.0
    with httpx.Client(base_url=live.api, auth=HawkAuth(*ADMIN), timeout=60) as admin:
        started = time.monotonic()
        response = admin.get("/purge-cache/hung/pool")
        waited = time.monotonic() - started
    assert response.status_code == 503
    assert auth_service.calls() == 1
    assert waited < 15

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


def test_an_outage_is_one_failed_call_then_none(
    signed: Signed, auth_service: VerifyingAuthService
) -> None:
    """When the auth service fails, the request that finds out waits for one failed call, never
    one per spelling; the requests after it are refused at once without a call while the
    circuit is open: 503 with Retry-After each time."""
    auth_service.status = 500
    admin = signed(ADMIN)
    for path, calls in (("/purge-cache/down%2Fpool", 1), ("/purge-cache/down/pool", 0)):
        before = auth_service.request_calls()
        response = admin.get(path)
        assert (response.status_code, auth_service.request_calls() - before) == (503, calls)
        assert response.headers["retry-after"] == "5"


def test_a_hung_auth_service_costs_one_timeout_then_nothing(
    server_factory: ServerFactory, auth_service: VerifyingAuthService
) -> None:
    """An auth service that does not answer holds the first request for one --auth-timeout
    (default 3 s), not one per spelling of the pool (RSGI would otherwise try `%2F` and then
    `/`); while it still hangs every request gets its 503 at once without asking it; once it
    answers again (one anonymous probe at a time finds out) requests are served again."""
    live = server_factory("--auth-root-url", auth_service.root_url, "--interface", "rsgi")
    auth_service.delay = 30.0
    with httpx.Client(base_url=live.api, auth=HawkAuth(*ADMIN), timeout=60) as admin:
        started = time.monotonic()
        response = admin.get("/purge-cache/hung/pool")
        waited = time.monotonic() - started
        assert response.status_code == 503
        assert 2.9 < waited < 5.5, waited  # one timeout, not two
        print(f"first 503 after {waited:.3f} s (one auth timeout)")
        for path in ("/purge-cache/hung/pool", "/purge-cache/hung%2Fpool", "/purge-cache/list"):
            started = time.monotonic()
            response = admin.get(path)
            waited = time.monotonic() - started
            assert response.status_code == 503 and waited < 1.0, (path, waited)
            print(f"503 with the circuit open: {waited * 1000:.1f} ms")
        assert auth_service.request_calls() == 1
        auth_service.delay = 0.0
        deadline = time.monotonic() + 10  # the hung probe's timeout, the interval, a probe
        while admin.get("/purge-cache/hung/pool").status_code != 200:
            assert time.monotonic() < deadline, "no recovery"
            time.sleep(0.1)
    probes = [body for body in auth_service.bodies if "authorization" not in body]
    assert probes and all(body["method"] == "get" for body in probes)
    events = [line for line in live.log_text().splitlines() if '"circuit-' in line]
    assert len(events) == 2 and '"auth-service"' in events[0], events

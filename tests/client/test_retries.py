"""Retries, back-off and timeouts, proven against a real server that fails on purpose."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from client.conftest import ADMIN_CREDENTIALS, MakeClient
from client.flaky_server import FlakyServer
from purgecache.client import (
    AuthenticationFailed,
    ConnectionFailed,
    InvalidResponse,
    RequestRejected,
    RequestTimedOut,
    Retries,
    ServerError,
)

from conftest import free_port

FAST = Retries(base_delay=0.001)
Flaky = Callable[..., FlakyServer]


@pytest.mark.parametrize("status", ["500", "502", "503"])
def test_5xx_is_retried_until_it_passes(
    client_factory: MakeClient, flaky: Flaky, status: str
) -> None:
    """Three 5xx answers, then 200: the caller sees only the result, after 4 attempts."""
    server = flaky(3, status)
    assert client_factory(root_url=server.root_url, retries=FAST).ping().alive
    assert server.attempts == 4


def test_persistent_5xx_gives_up_after_5_retries(client_factory: MakeClient, flaky: Flaky) -> None:
    """By default, like the official clients: 6 attempts, then ServerError with the last body."""
    server = flaky(100, "503")
    with pytest.raises(ServerError) as caught:
        client_factory(root_url=server.root_url, retries=FAST).ping()
    assert server.attempts == 6
    error = caught.value
    assert (error.status, error.code, error.message) == (503, "Status503", "failure 6")
    assert error.request_id == "request-6"


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_number_of_retries_is_configurable(
    client_factory: MakeClient, flaky: Flaky, max_retries: int
) -> None:
    """`Retries(max_retries=n)` makes n + 1 attempts at most."""
    server = flaky(100, "500")
    retries = Retries(max_retries=max_retries, base_delay=0.001)
    with pytest.raises(ServerError):
        client_factory(root_url=server.root_url, retries=retries).ping()
    assert server.attempts == max_retries + 1


@pytest.mark.parametrize(
    ("status", "error"),
    [("400", RequestRejected), ("401", AuthenticationFailed), ("404", RequestRejected)],
)
def test_4xx_is_never_retried(
    client_factory: MakeClient, flaky: Flaky, status: str, error: type[Exception]
) -> None:
    """A 4xx is the caller's fault: one attempt, raised at once."""
    server = flaky(1, status)
    with pytest.raises(error):
        client_factory(root_url=server.root_url, retries=FAST).ping()
    assert server.attempts == 1


def test_dropped_connections_are_retried(client_factory: MakeClient, flaky: Flaky) -> None:
    """A server that hangs up without answering, twice, then answers: success."""
    server = flaky(2, "drop")
    assert client_factory(root_url=server.root_url, retries=FAST).ping().alive
    assert server.attempts == 3


def test_refused_connections_end_in_connection_failed(client_factory: MakeClient) -> None:
    """Nobody listening: every attempt fails, then ConnectionFailed says how many."""
    retries = Retries(max_retries=2, base_delay=0.001)
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ConnectionFailed) as caught:
        client_factory(root_url=url, retries=retries).ping()
    assert caught.value.attempts == 3
    assert "3 attempts" in str(caught.value)


def test_slow_answers_time_out_and_are_retried(client_factory: MakeClient, flaky: Flaky) -> None:
    """An attempt slower than `timeout` is abandoned and retried; the next one answers."""
    server = flaky(1, "slow", delay=5.0)
    client = client_factory(root_url=server.root_url, retries=FAST, timeout=1.0)
    started = time.monotonic()
    assert client.ping().alive
    assert server.attempts == 2 and time.monotonic() - started < 3.5  # not the 5 s answer


def test_only_timeouts_end_in_request_timed_out(client_factory: MakeClient, flaky: Flaky) -> None:
    """When every attempt times out the error is RequestTimedOut (a ConnectionFailed)."""
    server = flaky(100, "slow", delay=2.0)
    client = client_factory(root_url=server.root_url, retries=Retries(1, 0.001), timeout=0.2)
    with pytest.raises(RequestTimedOut):
        client.ping()
    assert server.attempts == 2


def test_retry_after_lengthens_the_wait(client_factory: MakeClient, flaky: Flaky) -> None:
    """A 503 with `Retry-After: 0.3` waits at least that long before trying again."""
    server = flaky(2, "503", retry_after="0.3")
    started = time.monotonic()
    assert client_factory(root_url=server.root_url, retries=FAST).ping().alive
    assert time.monotonic() - started >= 0.6


def test_every_attempt_is_signed_afresh(client_factory: MakeClient, flaky: Flaky) -> None:
    """A retried purge re-sends the same body with a new Hawk nonce each time."""
    server = flaky(2, "503", answer=b"")
    client = client_factory(ADMIN_CREDENTIALS, root_url=server.root_url, retries=FAST)
    client.purge_cache("proj-a/linux", "checkouts")
    assert [seen.body for seen in server.seen] == [b'{"cacheName":"checkouts"}'] * 3
    headers = [seen.headers["authorization"] for seen in server.seen]
    assert all(header.startswith('Hawk mac="') for header in headers)
    assert len(set(headers)) == 3


def test_a_2xx_that_is_not_the_api_is_invalid_response(
    client_factory: MakeClient, flaky: Flaky
) -> None:
    """Pointing the client at some other web server gives InvalidResponse, not garbage."""
    server = flaky(0, answer=b"<html>hello</html>")
    with pytest.raises(InvalidResponse) as caught:
        client_factory(root_url=server.root_url).ping()
    assert caught.value.status == 200


@pytest.mark.parametrize(
    ("retry", "rand", "expected"),
    [(1, 0.5, 0.1), (2, 0.5, 0.2), (5, 0.5, 1.6), (1, 0.0, 0.075), (1, 1.0, 0.125), (12, 0.5, 30)],
)
def test_backoff_is_exponential_with_jitter_and_a_cap(
    retry: int, rand: float, expected: float
) -> None:
    """Delay = 0.1 s * 2^(retry-1), ±25 % jitter, at most 30 s (the official clients')."""
    assert Retries().delay(retry, rand=lambda: rand) == pytest.approx(expected)


def test_retry_after_counts_but_never_beyond_the_cap() -> None:
    """Retry-After raises the delay to its value, capped by max_delay."""
    retries = Retries(max_delay=5)
    assert retries.delay(1, retry_after=2.0, rand=lambda: 0.5) == 2.0
    assert retries.delay(1, retry_after=3600.0, rand=lambda: 0.5) == 5


@pytest.mark.parametrize(
    "options", [{"max_retries": -1}, {"base_delay": -1.0}, {"jitter": 2.0}, {"max_delay": -1.0}]
)
def test_nonsense_retry_settings_are_refused(options: dict[str, float]) -> None:
    """Negative counts or delays and jitter outside 0..1 are ValueErrors."""
    with pytest.raises(ValueError):
        Retries(**options)  # type: ignore[arg-type]

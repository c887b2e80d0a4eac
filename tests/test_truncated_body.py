"""A request body that ends early (the client closes its sending side, or the whole connection,
mid-body) is the client's mistake: a 400 `MalformedPayload` when an answer can still be read,
never a 500, a traceback or a 5xx in the metrics; under RSGI (granian raises
RSGIProtocolClosed from the read) and ASGI (`http.disconnect`) alike."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable

import httpx
import pytest

from conftest import LiveServer

ServerFactory = Callable[..., LiveServer]
PURGE = "/api/purge-cache/v1/purge-cache/a%2Fb"


def _head(port: int, framing: str) -> bytes:
    return (
        f"POST {PURGE} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n\r\n"
    ).encode()


def _half_close(port: int, request: bytes) -> bytes:
    """Send `request`, close the sending side, and read the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def _vanish(port: int, request: bytes) -> None:
    """Send `request` and close the connection without reading anything."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)


def _error_code(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)["code"]


def _access_statuses(live: LiveServer) -> list[int]:
    lines = [json.loads(x) for x in live.log_text().splitlines() if x.startswith("{")]
    return [e["status"] for e in lines if e.get("event") == "request" and e["method"] == "POST"]


@pytest.mark.parametrize("interface", ["rsgi", "asgi"])
def test_a_body_cut_short_is_a_400_and_never_a_500(
    server_factory: ServerFactory, interface: str
) -> None:
    """A body cut by a half-close (Content-Length; chunked under ASGI) gets 400
    MalformedPayload; a client
    that vanishes mid-body leaves an info-level access line only; no 5xx anywhere."""
    live = server_factory("--interface", interface)
    port = live.port
    # What arrived is valid JSON on its own: only its length tells that it is cut short.
    by_length = _head(port, "Content-Length: 100") + b'{"cacheName":"c"}'
    assert _error_code(_half_close(port, by_length)) == (400, "MalformedPayload")
    cut = 1
    if interface == "asgi":  # granian's RSGI ends a cut chunked body as if it were whole
        chunked = _head(port, "Transfer-Encoding: chunked") + b'11\r\n{"cacheName":"c"}\r\n'
        assert _error_code(_half_close(port, chunked)) == (400, "MalformedPayload")
        cut += 1
    for _ in range(3):
        _vanish(port, by_length)
    deadline = time.monotonic() + 10
    while len(_access_statuses(live)) < cut + 3:
        assert time.monotonic() < deadline, live.log_text()
        time.sleep(0.05)
    assert set(_access_statuses(live)) == {400}
    assert httpx.get(f"{live.api}/ping", timeout=5).status_code == 200  # still serving
    metrics = httpx.get(f"{live.root_url}/metrics", timeout=5).text
    assert f'endpoint="purgeCache",status="400"}} {cut + 3}.0' in metrics
    assert 'status="5' not in metrics
    log = live.log_text()
    assert "Traceback" not in log and '"level":"error"' not in log, log

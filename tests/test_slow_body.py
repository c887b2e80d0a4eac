"""A request body that has not all arrived `--body-timeout` after its headers is refused with 408
`RequestTimeout` and its connection closed, so a client that stalls mid-body (or sends it a
byte at a time) cannot hold a request open for ever; a body that arrives in pieces within the
time is served as usual. Under RSGI and ASGI alike."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable

import httpx
import mohawk
import pytest

from conftest import ADMIN, LiveServer

ServerFactory = Callable[..., LiveServer]
PURGE = "/api/purge-cache/v1/purge-cache/a%2Fb"
TIMEOUT = 1.0  # --body-timeout in these tests


def _head(port: int, framing: str, authorization: str = "") -> bytes:
    signed = f"Authorization: {authorization}\r\n" if authorization else ""
    return (
        f"POST {PURGE} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{signed}"
        f"Content-Type: application/json\r\n{framing}\r\n\r\n"
    ).encode()


def _answer_and_end(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it answered."""
    sock.settimeout(15)
    answer, answered = b"", 0.0
    while chunk := sock.recv(65536):
        answer += chunk
        answered = answered or time.monotonic()
    return answer, answered


def _stalled(port: int, request: bytes) -> tuple[int, str, float]:
    """Send the headers and part of a body, never the rest: the status, the error code, and
    how long after the headers the answer came (the connection is closed after it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sent = time.monotonic()
        sock.sendall(request)
        answer, answered = _answer_and_end(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)["code"], answered - sent


@pytest.mark.parametrize("interface", ["rsgi", "asgi"])
def test_a_body_that_stalls_gets_408_and_a_timely_slow_one_is_served(
    server_factory: ServerFactory, interface: str
) -> None:
    live = server_factory("--interface", interface, "--body-timeout", f"{TIMEOUT:g}s")
    port = live.port
    stalled = [_head(port, "Content-Length: 100") + b'{"cacheName":"c"']
    if interface == "asgi":  # granian's RSGI hands over a chunked body only once it is whole
        stalled.append(_head(port, "Transfer-Encoding: chunked") + b'5\r\n{"cac\r\n')
    for request in stalled:
        status, code, after = _stalled(port, request)
        assert (status, code) == (408, "RequestTimeout")
        assert TIMEOUT <= after < TIMEOUT + 3, after

    # A signed purge whose body comes in two pieces, the second well within the timeout.
    body = b'{"cacheName":"slow-but-on-time"}'
    sender = mohawk.Sender(
        {"id": ADMIN[0], "key": ADMIN[1], "algorithm": "sha256"},
        f"http://127.0.0.1:{port}{PURGE}",
        "POST",
        content=body.decode(),
        content_type="application/json",
        ext="e30=",
    )
    head = _head(port, f"Content-Length: {len(body)}\r\nConnection: close", sender.request_header)
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(head + body[:9])
        time.sleep(TIMEOUT / 2)
        sock.sendall(body[9:])
        answer, _ = _answer_and_end(sock)
    assert answer.startswith(b"HTTP/1.1 204"), answer
    signed_get = mohawk.Sender(
        {"id": ADMIN[0], "key": ADMIN[1], "algorithm": "sha256"},
        f"{live.api}/purge-cache/a%2Fb",
        "GET",
        content="",
        content_type="",
        ext="e30=",
    )
    listed = httpx.get(
        f"{live.api}/purge-cache/a%2Fb",
        headers={"Authorization": signed_get.request_header},
        timeout=5,
    ).json()["requests"]
    assert [r["cacheName"] for r in listed] == ["slow-but-on-time"]

    metrics = httpx.get(f"{live.root_url}/metrics", timeout=5).text
    assert f'endpoint="purgeCache",status="408"}} {len(stalled)}.0' in metrics
    assert 'status="5' not in metrics
    log = live.log_text()
    assert "Traceback" not in log and '"level":"error"' not in log, log

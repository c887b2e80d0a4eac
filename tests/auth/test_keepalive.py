"""The auth service's HTTP client against real sockets: framing, reuse, stale connections,
limits and failures (each answered by a small scripted asyncio server)."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from purgecache.auth.keepalive import HttpError, KeepAliveClient

Reply = Callable[[bytes, int], bytes | None]  # (request body, request number) -> raw answer


class ScriptedServer:
    """Counts connections and requests; answers each request with `reply` (None: hang up)."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.connections = 0
        self.requests: list[bytes] = []
        self.open_now = 0
        self.most_open = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/api/auth/v1/authenticate-hawk"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                answer = self.reply(body, len(self.requests))
                if answer is None:
                    return
                writer.write(answer)
                await writer.drain()
                if b"connection: close" in answer.lower():
                    return
        finally:
            self.open_now -= 1
            writer.close()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()


def ok(body: bytes, extra: str = "") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s"
        % (
            extra.encode(),
            len(body),
            body,
        )
    )


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


def test_answers_are_read_and_one_connection_is_reused() -> None:
    async def scenario() -> None:
        server = ScriptedServer(lambda body, n: ok(b'{"n":%d,"echo":%s}' % (n, body)))
        client = KeepAliveClient(await server.start())
        for index in range(5):
            status, answer = await client.post_json(b'{"i":%d}' % index, {"X-Trace": "t"})
            assert status == 200
            assert json.loads(answer) == {"n": index + 1, "echo": {"i": index}}
        assert server.connections == 1
        first = server.requests[0]
        assert first.startswith(b"POST /api/auth/v1/authenticate-hawk HTTP/1.1\r\n")
        assert b"\r\nHost: 127.0.0.1:" in first
        assert b"\r\nContent-Type: application/json\r\n" in first
        assert b"\r\nX-Trace: t\r\n" in first
        await client.close()
        await server.stop()

    run(scenario)


def test_chunked_answers_are_decoded() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'5\r\n{"a":\r\n3;ext=1\r\n123\r\n1\r\n}\r\n0\r\nTrailer: x\r\n\r\n'
    )

    async def scenario() -> None:
        server = ScriptedServer(lambda body, n: chunked)
        client = KeepAliveClient(await server.start())
        for _ in range(2):
            assert await client.post_json(b"{}") == (200, b'{"a":123}')
        assert server.connections == 1
        await client.close()
        await server.stop()

    run(scenario)


def test_a_connection_closed_while_idle_is_replaced_transparently() -> None:
    async def scenario() -> None:
        # The server hangs up after every answer without saying so (as an idle timeout would).
        server = ScriptedServer(lambda body, n: ok(b"{}") if n % 2 else None)
        client = KeepAliveClient(await server.start())
        assert await client.post_json(b"{}") == (200, b"{}")
        await asyncio.sleep(0.05)
        assert await client.post_json(b"{}") == (200, b"{}")
        assert server.connections == 2
        await client.close()
        await server.stop()

    run(scenario)


def test_connection_close_is_honoured() -> None:
    async def scenario() -> None:
        server = ScriptedServer(lambda body, n: ok(b"{}", "Connection: close\r\n"))
        client = KeepAliveClient(await server.start())
        for _ in range(3):
            assert await client.post_json(b"{}") == (200, b"{}")
        assert server.connections == 3
        await client.close()
        await server.stop()

    run(scenario)


def test_concurrency_is_capped_by_max_connections() -> None:
    async def scenario() -> None:
        server = ScriptedServer(lambda body, n: ok(b"{}"))
        client = KeepAliveClient(await server.start(), max_connections=3)
        answers = await asyncio.gather(*(client.post_json(b"{}") for _ in range(40)))
        assert answers == [(200, b"{}")] * 40
        assert server.most_open <= 3
        assert server.connections <= 3
        await client.close()
        await server.stop()

    run(scenario)


def test_failures_are_http_errors() -> None:
    async def scenario() -> None:
        garbage = ScriptedServer(lambda body, n: b"SSH-2.0-OpenSSH\r\n\r\n")
        client = KeepAliveClient(await garbage.start())
        with pytest.raises(HttpError, match="invalid answer"):
            await client.post_json(b"{}")
        await garbage.stop()

        silent = ScriptedServer(lambda body, n: None)  # hangs up without answering
        client = KeepAliveClient(await silent.start())
        with pytest.raises(HttpError, match="closed before an answer"):
            await client.post_json(b"{}")
        await silent.stop()

        refused = KeepAliveClient("http://127.0.0.1:1/")  # nothing listens there
        with pytest.raises(HttpError, match="cannot connect"):
            await refused.post_json(b"{}")
        await asyncio.sleep(0.01)  # let the closed transports go

    run(scenario)


async def hung_server() -> tuple[asyncio.Server, int]:
    """A server that takes connections and never answers; and its port."""

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.sleep(5)
        finally:
            writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_a_server_that_never_answers_times_out() -> None:
    async def scenario() -> None:
        server, port = await hung_server()
        client = KeepAliveClient(f"http://127.0.0.1:{port}/", timeout=0.2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(HttpError, match="timed out"):
            await client.post_json(b"{}")
        assert loop.time() - started < 2
        server.close()

    run(scenario)


def test_the_timeout_covers_the_wait_for_a_connection_slot() -> None:
    """Requests queued behind hung ones (all connections busy) time out with them: each waits
    one timeout in all, not one per request ahead of it."""

    async def scenario() -> None:
        server, port = await hung_server()
        client = KeepAliveClient(f"http://127.0.0.1:{port}/", timeout=0.5, max_connections=1)
        loop = asyncio.get_running_loop()
        started = loop.time()
        calls = [client.post_json(b"{}") for _ in range(4)]
        failures = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(f, HttpError) for f in failures)
        assert loop.time() - started < 1.5  # not 4 x 0.5 s
        server.close()

    run(scenario)


def test_only_http_urls_are_accepted() -> None:
    with pytest.raises(ValueError):
        KeepAliveClient("ftp://example.com/")


def test_https_with_a_verified_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Taskcluster deployment's auth service is https: the certificate is verified against
    the default trust store (here one holding only a throwaway certificate for 127.0.0.1)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))

    async def scenario() -> None:
        server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_side.load_cert_chain(cert, key)
        scripted = ScriptedServer(lambda body, n: ok(b'{"tls":true}'))
        scripted.server = await asyncio.start_server(
            scripted._serve, "127.0.0.1", 0, ssl=server_side
        )
        port = scripted.server.sockets[0].getsockname()[1]
        client = KeepAliveClient(f"https://127.0.0.1:{port}/api/auth/v1/authenticate-hawk")
        for _ in range(3):
            assert await client.post_json(b"{}") == (200, b'{"tls":true}')
        assert scripted.connections == 1
        await client.close()
        monkeypatch.delenv("SSL_CERT_FILE")
        stranger = KeepAliveClient(f"https://127.0.0.1:{port}/")  # system CAs only
        with pytest.raises(HttpError):
            await stranger.post_json(b"{}")
        await scripted.stop()
        await asyncio.sleep(0.01)

    run(scenario)

"""A small HTTP/1.1 client for one endpoint: JSON POSTs over pooled keep-alive connections.

The remote authenticator makes one `authenticateHawk` call per API request, so this client
is on the hot path of `--auth-root-url`. httpx spent 0.8-2 ms of CPU per call here (its pool
bookkeeping grows with concurrency); this one spends a few tens of µs: prebuilt request
heads, asyncio streams, a free list of idle connections. It speaks just what the auth service
needs: POST, `Content-Length` or chunked answers, `Connection: close`, http and https.
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024


class HttpError(Exception):
    """The exchange failed: no connection, timeout, or an answer that is not HTTP/1.x."""


class _StaleConnection(HttpError):
    """A reused connection was closed by the server before it answered (safe to retry)."""


_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class KeepAliveClient:
    """POSTs to one URL; at most `max_connections` open at once, idle ones reused."""

    def __init__(self, url: str, *, timeout: float = 10.0, max_connections: int = 64) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.tls = ssl.create_default_context() if parts.scheme == "https" else None
        default_port = self.port == (443 if self.tls else 80)
        authority = parts.hostname if default_port else f"{parts.hostname}:{self.port}"
        if ":" in parts.hostname:  # IPv6 literal
            authority = f"[{parts.hostname}]" + ("" if default_port else f":{self.port}")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._head = (
            f"POST {path} HTTP/1.1\r\nHost: {authority}\r\n"
            "Content-Type: application/json\r\nAccept: application/json\r\n"
        ).encode("latin-1")
        self.timeout = timeout
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)

    async def post_json(
        self, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """POST `body` (JSON); the status and the answer's body. HttpError on failure."""
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        request = b"%s%sContent-Length: %d\r\n\r\n%s" % (
            self._head,
            extra.encode("latin-1"),
            len(body),
            body,
        )
        try:  # the timeout covers the wait for a free connection slot too
            async with asyncio.timeout(self.timeout), self._slots:
                while self._idle:
                    connection = self._idle.pop()
                    try:
                        return await self._exchange(connection, request, reused=True)
                    except _StaleConnection:
                        continue  # closed while idle: try the next one
                return await self._exchange(await self._connect(), request, reused=False)
        except TimeoutError as error:
            raise HttpError("timed out") from error

    async def _connect(self) -> _Connection:
        try:
            return await asyncio.open_connection(
                self.host, self.port, ssl=self.tls, limit=MAX_HEAD_BYTES
            )
        except OSError as error:
            raise HttpError(f"cannot connect: {type(error).__name__}") from error

    async def _exchange(
        self, connection: _Connection, request: bytes, reused: bool
    ) -> tuple[int, bytes]:
        reader, writer = connection
        keep = False  # only set once the whole answer was read
        try:
            writer.write(request)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as error:
                if reused and not error.partial:
                    raise _StaleConnection("closed by the server") from error
                raise HttpError("connection closed before an answer") from error
            status, length, chunked, reusable = _parse_head(head)
            if chunked:
                body = await _read_chunked(reader)
            elif length is not None:
                body = await reader.readexactly(length)
            else:  # no framing: the body runs to the end of the connection
                body, reusable = await reader.read(MAX_BODY_BYTES + 1), False
                if len(body) > MAX_BODY_BYTES:
                    raise HttpError("answer too large")
            keep = reusable
            return status, body
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
            if reused and isinstance(error, ConnectionError):
                raise _StaleConnection("closed by the server") from error
            raise HttpError(f"exchange failed: {type(error).__name__}") from error
        except ValueError as error:  # readuntil's limit, or a malformed head
            raise HttpError(f"invalid answer: {error}") from error
        finally:
            if keep:
                self._idle.append(connection)
            else:
                writer.close()

    async def close(self) -> None:
        """Close the idle connections."""
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()


def _parse_head(head: bytes) -> tuple[int, int | None, bool, bool]:
    """Status, Content-Length, whether chunked, and whether the connection stays open."""
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if version not in ("HTTP/1.1", "HTTP/1.0") or not code.isdigit():
        raise ValueError("not an HTTP/1.x status line")
    length: int | None = None
    chunked = False
    keep = version == "HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        if name == "content-length":
            if not value.isdigit() or int(value) > MAX_BODY_BYTES:
                raise ValueError("bad Content-Length")
            length = int(value)
        elif name == "transfer-encoding":
            chunked = value.lower().endswith("chunked")
        elif name == "connection":
            tokens = {token.strip().lower() for token in value.split(",")}
            keep = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
    if int(code) in (204, 304) or 100 <= int(code) < 200:
        length = 0
    return int(code), length, chunked, keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        line = await reader.readuntil(b"\r\n")
        text = line.split(b";", 1)[0].strip()
        if not text or any(c not in b"0123456789abcdefABCDEF" for c in text):
            raise ValueError("bad chunk size")
        chunk = int(text, 16)
        if chunk == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return b"".join(parts)
        size += chunk
        if size > MAX_BODY_BYTES:
            raise ValueError("answer too large")
        parts.append(await reader.readexactly(chunk))
        if await reader.readexactly(2) != b"\r\n":
            raise ValueError("bad chunk framing")

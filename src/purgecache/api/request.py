"""One HTTP request as the API sees it: raw target, headers, body, and their parsing rules."""

from __future__ import annotations

import asyncio
import functools
import re
import time
import zlib
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, quote, unquote

import orjson
from granian.rsgi import ProtocolClosed as RsgiProtocolClosed  # type: ignore[attr-defined]

from purgecache.api.errors import ApiError
from purgecache.model import SPELLING_ENCODED, SPELLING_SLASH

if TYPE_CHECKING:
    from purgecache.api.endpoints import Endpoint, QueryParam
    from purgecache.auth.credentials import Verdict

Receive = Callable[[], Awaitable[Mapping[str, Any]]]


class HeaderView(Protocol):
    """Request headers by lower-case name: a dict (ASGI) or granian's RSGI headers as they are."""

    def get(self, key: str, default: Any = None, /) -> Any: ...

    def __contains__(self, key: object, /) -> bool: ...


_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_WANTED = frozenset(
    (
        "host",
        "authorization",
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "x-forwarded-port",
        "x-forwarded-proto",
        "x-forwarded-for",
        "x-taskcluster-trace-id",
        "accept-encoding",
        "user-agent",
    )
)


class BodyIncomplete(Exception):
    """The client closed the connection (or its sending side) before the body's end."""


class Call:
    """One API call in progress: which endpoint, its URL parameters and query values, who is
    calling (authenticated at most once), and whether the fast path is answering it.

    Every field starts at its class-level default, so a new call costs no stores; the steps
    set what they learn."""

    name = "-"
    endpoint: Endpoint | None = None
    params: Mapping[str, str] = MappingProxyType({})  # replaced by the steps' own
    query: Mapping[str, object] = MappingProxyType({})
    client_id: str | None = None
    url_problem: str | None = None  # why a URL parameter is invalid, if one is
    verdict: Verdict | None = None
    signed_target: str | None = None  # the request target the verdict was given for
    fast = False

    def signed_spelling(self) -> str | None:
        """How the pool id was spelt in the request target the caller's signature verified
        (`%2F` or a literal slash); None for an unsigned call or one without a pool id."""
        verdict = self.verdict
        target = self.signed_target
        if verdict is None or verdict.status != "auth-success" or target is None:
            return None
        if "workerPoolId" not in self.params:
            return None
        end = target.find("?")
        path = target if end < 0 else target[:end]
        return SPELLING_ENCODED if "%2F" in path or "%2f" in path else SPELLING_SLASH


_NONE: dict[Any, Any] = {}  # shared, never written: calls replace it


class Request:
    """The parts of a request the service uses, whatever the server interface."""

    __slots__ = (
        "body",
        "client_ip",
        "headers",
        "is_json",
        "method",
        "path",
        "path_decoded",
        "payload",
        "peer",
        "query",
        "read_whole",
        "tls",
    )

    def __init__(
        self,
        method: str,
        path: str,
        query: str,
        headers: HeaderView,
        tls: bool,
        peer: str | None,
        path_decoded: bool = False,
    ) -> None:
        self.method = method
        # ASGI: the path as sent, still percent-encoded. RSGI only offers it percent-decoded
        # (`path_decoded`); then Hawk's signed resource is rebuilt (see `resources`).
        self.path = path
        self.query = query  # raw query string
        self.headers = headers
        self.tls = tls
        self.peer = peer  # ASGI: the client's address; RSGI: `address:port`
        # The peer's address (without the port RSGI appends); every access line names it.
        self.client_ip = peer.rpartition(":")[0] if path_decoded and peer else peer
        self.path_decoded = path_decoded
        self.body = b""
        self.payload: Any = _NONE  # the parsed JSON body (replaced, never changed), or {}
        self.is_json = False
        # The whole body at once (RSGI); used when Content-Length says it is small enough.
        self.read_whole: Callable[[], Awaitable[bytes]] | None = None

    @classmethod
    def from_asgi(cls, scope: Mapping[str, Any]) -> Request:
        """From an ASGI HTTP scope."""
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            key = name.decode("latin-1").lower()
            if key in _WANTED and key not in headers:
                headers[key] = value.decode("latin-1")
        raw_path = scope.get("raw_path") or scope["path"].encode()
        client = scope.get("client")
        return cls(
            scope["method"],
            raw_path.decode("latin-1"),
            scope["query_string"].decode("latin-1"),
            headers,
            scope.get("scheme") == "https",
            client[0] if client else None,
        )

    @classmethod
    def from_rsgi(cls, scope: Any) -> Request:
        """From a granian RSGI scope: its headers are used as they are (lower-case names, no
        copy); its path is already percent-decoded."""
        return cls(
            scope.method,
            scope.path,
            scope.query_string,
            scope.headers,
            scope.scheme == "https",
            scope.client,
            path_decoded=True,
        )

    @property
    def resource(self) -> str:
        """The request target as signed by Hawk: raw path plus query."""
        return f"{self.path}?{self.query}" if self.query else self.path

    def resources(self, worker_pool_id: str | None) -> tuple[str, ...]:
        """The request targets the client may have signed, most likely first.

        Exact with ASGI. With RSGI the path arrives decoded: a pool id was sent with its slash
        encoded (`a%2Fb`, as every current client does) or literally (`a/b`, seed era); no
        other spelling is rebuilt (a hand-made `a%2fb` verifies under ASGI only).
        """
        if not self.path_decoded or worker_pool_id is None:
            return (self.resource,)
        return decoded_pool_targets(self.path, self.query, worker_pool_id)


@functools.lru_cache(maxsize=4096)  # a fleet asks about the same few URLs all the time
def decoded_pool_targets(path: str, query: str, worker_pool_id: str) -> tuple[str, ...]:
    """The request targets a client may have signed for a URL that arrived decoded and ends
    with a pool id (the wildcard parameter is always last)."""
    query = f"?{query}" if query else ""
    received = path + query
    if not path.endswith(worker_pool_id):
        return (received,)
    encoded = f"{path[: len(path) - len(worker_pool_id)]}{_quote_pool(worker_pool_id)}{query}"
    return (encoded,) if encoded == received else (encoded, received)


@functools.lru_cache(maxsize=4096)
def _quote_pool(worker_pool_id: str) -> str:
    return quote(worker_pool_id, safe="")


async def asgi_chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The body chunks of an ASGI request; BodyIncomplete if the client goes before its end."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BodyIncomplete
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def decode_segment(raw: str) -> str:
    """Percent-decode like JavaScript's decodeURIComponent (`+` stays); ValueError if invalid."""
    if _BAD_ESCAPE_RE.search(raw):
        raise ValueError("malformed percent-escape")
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError as error:
        raise ValueError("percent-escapes are not UTF-8") from error


def decode_wildcard(raw: str) -> str:
    """A wildcard path parameter: split at literal `/`, decode each piece, join with `/`."""
    return "/".join(decode_segment(piece) for piece in raw.split("/"))


def parse_query(query: str, accepted: tuple[QueryParam, ...]) -> dict[str, object]:
    """Form-decode the query string and check each value by its parameter's rule; unknown or
    repeated keys and bad values are one 400 listing every problem (bewit is always known)."""
    if not query:
        return {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError) as error:
        raise ApiError("InvalidRequestArguments", "Query string is not valid UTF-8") from error
    rules = {param.name: param for param in accepted}
    texts: dict[str, str] = {}
    problems: list[str] = []
    for key, value in pairs:
        if key == "bewit":
            continue
        if key not in rules:
            problems.append(f"Unknown query-string parameter {key}")
        elif key in texts:
            problems.append(f"Query-string parameter {key} must be given at most once")
        texts[key] = value
    values: dict[str, object] = {}
    if not problems:
        for key, value in texts.items():
            try:
                values[key] = rules[key].parse(value)
            except ValueError as error:
                problems.append(str(error))
    if problems:
        raise ApiError("InvalidRequestArguments", "\n".join(problems))
    return values


def _inflate(body: bytes, encoding: str, limit: int) -> bytes:
    wbits = {"gzip": 31, "x-gzip": 31, "deflate": 15}.get(encoding)
    if wbits is None:
        raise ApiError("MalformedPayload", f"Unsupported Content-Encoding: {encoding}")
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        raise ApiError("MalformedPayload", f"Body is not valid {encoding} data") from error
    if len(out) > limit:
        raise ApiError("InputTooLarge", f"Request body is larger than {limit} bytes")
    return out


class BodyDeadlines:
    """How long a request's body may take to arrive once its headers have: `reading` holds
    the tasks reading a body, each with its deadline (`time.monotonic()`). `expire`, called
    every fraction of a second off the request path, cancels the late ones, which `read_body`
    turns into a 408. A timer per request (`asyncio.timeout`) would cost about 7 µs on every
    purge; this costs a dict entry."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.reading: dict[asyncio.Task[Any] | None, float] = {}
        self._expired: set[asyncio.Task[Any]] = set()

    def expire(self, now: float) -> None:
        """Cancel every task whose body is still missing at `now`."""
        late = [task for task, deadline in self.reading.items() if deadline <= now]
        for task in late:
            del self.reading[task]
            if task is not None:
                self._expired.add(task)
                task.cancel()

    def expired(self, task: asyncio.Task[Any] | None) -> bool:
        """Whether `expire` cancelled `task` (then no longer cancelled: it gets a 408)."""
        if task not in self._expired:
            return False
        assert task is not None
        self._expired.discard(task)
        task.uncancel()
        return True


async def read_body(
    request: Request, chunks: AsyncIterable[bytes], limit: int, deadlines: BodyDeadlines
) -> bytes:
    """Read the whole body, refusing more than `limit` bytes (413) and inflating gzip/deflate;
    408 when it has not all arrived `deadlines.seconds` after the headers."""
    declared = request.headers.get("content-length")
    if declared is None and "transfer-encoding" not in request.headers:
        return b""  # no body: the common GET
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError("InputTooLarge", f"Request body is larger than {limit} bytes")
    reading, task = deadlines.reading, asyncio.current_task()
    reading[task] = time.monotonic() + deadlines.seconds
    try:
        if request.read_whole is not None and declared is not None and declared.isdigit():
            body = await request.read_whole()  # the server stops at Content-Length
        else:
            body = await _read_chunks(chunks, limit)
    except (BodyIncomplete, RsgiProtocolClosed) as error:
        raise _incomplete_body() from error
    except asyncio.CancelledError:
        if deadlines.expired(task):
            raise ApiError(
                "RequestTimeout",
                f"The request body did not arrive within {deadlines.seconds:g} s of its headers",
            ) from None
        raise
    finally:
        reading.pop(task, None)
    if declared is not None and declared.isdigit() and len(body) < int(declared):
        raise _incomplete_body()
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if body and encoding not in ("", "identity"):
        body = _inflate(body, encoding, limit)
    return body


async def _read_chunks(chunks: AsyncIterable[bytes], limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise ApiError("InputTooLarge", f"Request body is larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _incomplete_body() -> ApiError:
    """A client that stopped sending mid-body: its mistake, a 400 (if it still reads one)."""
    return ApiError(
        "MalformedPayload", "The request body ended before it was complete (connection closed)"
    )


def parse_payload(request: Request) -> None:
    """Parse a JSON body (only `application/json` counts); other bodies are ignored as `{}`."""
    mime = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if mime != "application/json":
        return
    request.is_json = True
    if not request.body.strip():
        return
    try:
        value = orjson.loads(request.body)
    except orjson.JSONDecodeError as error:
        request.payload = request.body.decode("utf-8", "replace")
        raise ApiError("MalformedPayload", f"Failed to parse JSON body: {error}") from error
    if not isinstance(value, dict | list):
        request.payload = value
        raise ApiError("MalformedPayload", "The JSON body must be an object or an array")
    request.payload = value

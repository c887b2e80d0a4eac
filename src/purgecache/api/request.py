"""One HTTP request as the API sees it: raw target, headers, body, and their parsing rules."""

from __future__ import annotations

import re
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson

from purgecache.api.errors import ApiError

Receive = Callable[[], Awaitable[Mapping[str, Any]]]

_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_WANTED_HEADERS = frozenset(
    (
        "host",
        "authorization",
        "content-type",
        "content-length",
        "content-encoding",
        "x-forwarded-port",
        "x-forwarded-proto",
        "x-forwarded-for",
        "x-taskcluster-trace-id",
        "accept-encoding",
    )
)


@dataclass(slots=True)
class Request:
    """The parts of an ASGI request the service uses."""

    method: str
    raw_path: str  # still percent-encoded, as the client sent it (and signed it)
    query: str  # raw query string
    headers: dict[str, str]
    tls: bool
    client_ip: str | None
    body: bytes = b""
    payload: Any = field(default_factory=dict)  # parsed JSON body, or {} when there is none
    is_json: bool = False

    @classmethod
    def from_scope(cls, scope: Mapping[str, Any]) -> Request:
        """Build from an ASGI HTTP scope."""
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            key = name.decode("latin-1").lower()
            if key in _WANTED_HEADERS and key not in headers:
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

    @property
    def resource(self) -> str:
        """The request target as signed by Hawk: raw path plus query."""
        return f"{self.raw_path}?{self.query}" if self.query else self.raw_path


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


def parse_query(query: str, allowed: tuple[str, ...]) -> dict[str, str]:
    """Form-decode the query string; unknown or repeated keys are 400 (bewit is always known)."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError) as error:
        raise ApiError("InvalidRequestArguments", "Query string is not valid UTF-8") from error
    values: dict[str, str] = {}
    problems: list[str] = []
    for key, value in pairs:
        if key == "bewit":
            continue
        if key not in allowed:
            problems.append(f"Unknown query-string parameter {key}")
        elif key in values:
            problems.append(f"Query-string parameter {key} must be given at most once")
        values[key] = value
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


async def read_body(request: Request, receive: Receive, limit: int) -> bytes:
    """Read the whole body, refusing more than `limit` bytes (413) and inflating gzip/deflate."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError("InputTooLarge", f"Request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise ApiError("InputTooLarge", f"Request body is larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if body and encoding not in ("", "identity"):
        body = _inflate(body, encoding, limit)
    return body


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

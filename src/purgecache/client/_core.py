"""Everything the sync and async clients share, with no I/O: URLs, signing, retries, answers.

`ClientCore.exchange(call)` is a generator that drives one API call. It yields either an
`httpx.Request` to send (the shell sends back the `httpx.Response`, or the
`httpx.TransportError` it got instead) or a `Sleep` to wait (the shell sends back None), and
finally returns the parsed result or raises a `PurgeCacheError`. A shell is therefore a few
lines of `send` and `sleep`, with `time` or `asyncio`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import TypedDict, TypeVar
from urllib.parse import urlencode, urlsplit

import httpx

from purgecache.client._calls import Call
from purgecache.client._credentials import Credentials
from purgecache.client._errors import (
    ConfigurationError,
    ConnectionFailed,
    InvalidResponse,
    RequestTimedOut,
    api_error,
)
from purgecache.client._retries import RETRYABLE_TRANSPORT_ERRORS, Retries, retry_after
from purgecache.client._signing import HawkAuth, signed_url

T = TypeVar("T")

API_PATH = "/api/purge-cache/v1/"
DEFAULT_TIMEOUT = 30.0  # seconds, for each phase of each attempt (connect, read, write, pool)
DEFAULT_SIGNED_URL_LIFETIME = 900.0  # seconds, as the official clients
DEFAULT_RETRIES = Retries()


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait this long before the next attempt."""

    seconds: float


Reply = httpx.Response | httpx.TransportError
Exchange = Generator[httpx.Request | Sleep, Reply | None, T]


def _user_agent() -> str:
    try:
        return f"purgecache-client/{metadata.version('purgecache')}"
    except metadata.PackageNotFoundError:  # running from a source tree
        return "purgecache-client"


USER_AGENT = _user_agent()


def normalize_root_url(root_url: str) -> str:
    """The root URL without trailing slashes, checked to be an http(s) URL with a host."""
    url = root_url.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as error:
        raise ConfigurationError(f"invalid root URL {root_url!r}: {error}") from error
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"invalid root URL {root_url!r}: expected http(s)://host[:port], "
            "e.g. https://tc.example.com"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(f"invalid root URL {root_url!r}: no query or fragment allowed")
    api_base = API_PATH.rstrip("/")
    if parts.path.endswith(api_base):
        raise ConfigurationError(
            f"invalid root URL {root_url!r}: give the deployment's root URL without "
            f"{api_base}, e.g. {url.removesuffix(api_base)}"
        )
    return url


def _connection_failed(error: httpx.TransportError, url: str, attempts: int) -> ConnectionFailed:
    kind = RequestTimedOut if isinstance(error, httpx.TimeoutException) else ConnectionFailed
    reason = str(error) or type(error).__name__
    noun = "attempt" if attempts == 1 else "attempts"
    return kind(f"could not reach {url} ({attempts} {noun}): {reason}", url=url, attempts=attempts)


def _json_or_none(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


class ClientOptions(TypedDict, total=False):
    """Keyword options of both clients and of `from_env` (see `BaseClient.__init__`)."""

    authorized_scopes: Sequence[str] | None
    retries: Retries
    timeout: float | httpx.Timeout


class ClientCore:
    """Configuration of one client, and the I/O-free logic of every call it makes."""

    def __init__(
        self,
        root_url: str,
        credentials: Credentials | None = None,
        *,
        authorized_scopes: Sequence[str] | None = None,
        retries: Retries = DEFAULT_RETRIES,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        if isinstance(authorized_scopes, str):
            raise ConfigurationError("authorized_scopes must be a list of scopes, not a string")
        self.root_url = normalize_root_url(root_url)
        self.credentials = credentials
        self.authorized_scopes = None if authorized_scopes is None else tuple(authorized_scopes)
        self.retries = retries
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._auth = None if credentials is None else HawkAuth(credentials, authorized_scopes)

    def url(self, call: Call[object]) -> str:
        """The full URL of a call."""
        query = f"?{urlencode(call.query)}" if call.query else ""
        return f"{self.root_url}{API_PATH}{call.route}{query}"

    def request(self, call: Call[object]) -> httpx.Request:
        """The HTTP request of a call, signed afresh (new timestamp and nonce)."""
        headers = {
            "accept": "application/json",
            "accept-encoding": "gzip",
            "user-agent": USER_AGENT,
        }
        headers.update(call.headers)
        content = None
        if call.payload is not None:
            content = json.dumps(call.payload, separators=(",", ":")).encode("utf-8")
            headers["content-type"] = "application/json"
        request = httpx.Request(
            call.method,
            self.url(call),
            headers=headers,
            content=content,
            extensions={"timeout": self.timeout.as_dict()},
        )
        if self._auth is not None:
            self._auth.sign(request)
        return request

    def signed_url(self, call: Call[object], expires_in: float) -> str:
        """A URL anyone can GET for `expires_in` seconds with these credentials' rights."""
        if call.method != "GET":
            raise ConfigurationError(f"{call.endpoint} is not a GET endpoint")
        if self.credentials is None:
            raise ConfigurationError(
                "signed URLs need credentials (TASKCLUSTER_CLIENT_ID and "
                "TASKCLUSTER_ACCESS_TOKEN); through the proxy, requests are not signed here"
            )
        return signed_url(
            self.url(call),
            self.credentials,
            expires_at=int(time.time() + expires_in),
            authorized_scopes=self.authorized_scopes,
        )

    def exchange(self, call: Call[T]) -> Exchange[T]:
        """Drive one call to its result: send, retry on failure with back-off, parse."""
        retry = 0
        while True:
            reply = yield self.request(call)
            may_retry = retry < self.retries.max_retries
            if isinstance(reply, httpx.Response):
                if reply.status_code < 500 or not may_retry:
                    return self.outcome(call, reply)
                wait = self.retries.delay(retry + 1, retry_after(reply))
            elif isinstance(reply, RETRYABLE_TRANSPORT_ERRORS) and may_retry:
                wait = self.retries.delay(retry + 1)
            elif isinstance(reply, httpx.TransportError):
                raise _connection_failed(reply, self.url(call), retry + 1) from reply
            else:
                raise TypeError(f"the shell sent {reply!r} instead of a reply")
            retry += 1
            yield Sleep(wait)

    def outcome(self, call: Call[T], response: httpx.Response) -> T:
        """The parsed result of a final answer, or the error it stands for."""
        request_id = response.headers.get("x-for-request-id")
        if not response.is_success:
            body = _json_or_none(response)
            raise api_error(response.status_code, body, request_id, call.endpoint, response.text)
        try:
            return call.parse(response.json() if response.content else None)
        except ValueError as error:
            raise InvalidResponse(
                f"{call.endpoint}: unexpected answer from {self.root_url}: {error}",
                status=response.status_code,
                request_id=request_id,
            ) from error

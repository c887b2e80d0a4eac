"""Where verdicts come from: our own clients file, or a Taskcluster deployment's auth service.

Both answer `authenticate(...)` with a `Verdict`; the API does not know which one it has.
The auth service sits behind a circuit (`purgecache.circuit`): its first failure (no answer
within the timeout, no connection, an error status, an answer that makes no sense) opens it,
and until an anonymous probe gets a verdict again every request is refused at once
(`AuthServiceDown`, an AuthServiceError: 503) instead of waiting for the service.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

from purgecache.auth import credentials
from purgecache.auth.clients import ClientsFileError, ClientStore, file_signature, load_clients
from purgecache.auth.credentials import Verdict
from purgecache.auth.keepalive import HttpError, KeepAliveClient
from purgecache.auth.scopes import ScopeSet, is_valid_scope
from purgecache.circuit import Circuit, CircuitOpen
from purgecache.logs import log_event
from purgecache.model import to_ms

log = logging.getLogger("purgecache")

DEFAULT_AUTH_TIMEOUT_S = 3.0
# An anonymous `authenticateHawk` question: any verdict at all means the service answers.
PROBE_BODY = orjson.dumps(
    {"method": "get", "resource": "/api/purge-cache/v1/ping", "host": "localhost", "port": 80}
)


class AuthServiceError(Exception):
    """The remote auth service could not give a verdict (unreachable, error, nonsense)."""


class AuthServiceDown(AuthServiceError, CircuitOpen):
    """Refused at once: the auth service failed recently and the probe has not seen it back."""

    def __init__(self) -> None:
        super().__init__("the auth service is failing (circuit open): refused without asking")


class Authenticator(Protocol):
    """Gives the verdict for one request."""

    async def authenticate(
        self,
        method: str,
        resource: str,
        host: str,
        port: int,
        authorization: str | None,
        *,
        now: int,
        source_ip: str | None = None,
        trace_id: str | None = None,
    ) -> Verdict:
        """Verdict for the request; AuthServiceError when none can be had."""

    async def close(self) -> None:
        """Release connections."""


class LocalAuthenticator:
    """Verdicts from the clients file (replaceable at run time by `clients`)."""

    def __init__(self, clients: ClientStore, source: Path | None = None) -> None:
        self.clients = clients
        self.source = source
        self._seen = None if source is None else file_signature(source)

    def refresh(self) -> bool:
        """Take the clients of `source` if the file changed since last read; whether it did.
        A file that cannot be used is logged and the clients in force stay."""
        assert self.source is not None
        found = file_signature(self.source)  # before reading: a later change is seen next time
        if found == self._seen:
            return False
        self._seen = found
        try:
            self.clients = load_clients(self.source)
        except ClientsFileError as error:
            log_event(log, logging.ERROR, "clients-reload-failed", error=str(error))
            return False
        return True

    async def follow(self, interval: float = 1.0) -> None:
        """`refresh` every `interval` seconds, off the request path, until cancelled."""
        while True:
            await asyncio.sleep(interval)
            self.refresh()

    async def authenticate(
        self,
        method: str,
        resource: str,
        host: str,
        port: int,
        authorization: str | None,
        *,
        now: int,
        source_ip: str | None = None,
        trace_id: str | None = None,
    ) -> Verdict:
        return credentials.authenticate(
            self.clients, method, resource, host, port, authorization, now
        )

    async def close(self) -> None:
        return None


@functools.lru_cache(maxsize=1024)  # a client's scopes come back the same on every call
def _scope_set(scopes: tuple[str, ...]) -> ScopeSet:
    if not all(is_valid_scope(scope) for scope in scopes):
        raise AuthServiceError("the auth service answered invalid scopes")
    return ScopeSet(scopes)


@functools.lru_cache(maxsize=1024)
def _expires_ms(expires: str) -> int:
    try:
        return to_ms(datetime.fromisoformat(expires.replace("Z", "+00:00")))
    except ValueError as error:
        raise AuthServiceError("the auth service answered an invalid expires") from error


def _parse_verdict(answer: Any) -> Verdict:
    """A Verdict from an `authenticateHawk` answer, or AuthServiceError if it is malformed."""
    if not isinstance(answer, dict):
        raise AuthServiceError("the auth service answered something that is not an object")
    status = answer.get("status")
    if status == "auth-failed":
        return credentials.failed(str(answer.get("message", "")))
    scopes = answer.get("scopes")
    if status not in ("auth-success", "no-auth") or not isinstance(scopes, list):
        raise AuthServiceError("the auth service answered with an unknown status")
    if not all(type(scope) is str for scope in scopes):
        raise AuthServiceError("the auth service answered invalid scopes")
    scope_set = _scope_set(tuple(scopes))
    expires = answer.get("expires")
    expires_ms = _expires_ms(expires) if isinstance(expires, str) else None
    client_id = answer.get("clientId")
    payload_hash = answer.get("hash")
    return Verdict(
        str(status),
        scope_set,
        client_id if isinstance(client_id, str) else None,
        payload_hash if isinstance(payload_hash, str) else None,
        expires_ms,
        str(answer.get("scheme", "none")),
    )


class RemoteAuthenticator:
    """Verdicts from `<auth root URL>/api/auth/v1/authenticate-hawk`, over pooled keep-alive
    connections. Verdicts are never cached: each request's nonce and timestamp differ.
    """

    def __init__(self, auth_root_url: str, *, timeout: float = DEFAULT_AUTH_TIMEOUT_S) -> None:
        self.url = f"{auth_root_url.rstrip('/')}/api/auth/v1/authenticate-hawk"
        self.timeout = timeout
        self._client: KeepAliveClient | None = None
        self.circuit = Circuit("auth-service", self._probe, AuthServiceDown)

    def _http(self) -> KeepAliveClient:
        if self._client is None:  # created lazily, inside the worker's event loop
            self._client = KeepAliveClient(self.url, timeout=self.timeout, max_connections=64)
        return self._client

    async def authenticate(
        self,
        method: str,
        resource: str,
        host: str,
        port: int,
        authorization: str | None,
        *,
        now: int,
        source_ip: str | None = None,
        trace_id: str | None = None,
    ) -> Verdict:
        if credentials.uses_both_schemes(resource, authorization):
            return credentials.failed(credentials.BOTH_SCHEMES)
        body: dict[str, Any] = {
            "method": method.lower(),
            "resource": resource,
            "host": host,
            "port": port,
        }
        if authorization is not None:
            body["authorization"] = authorization
        if source_ip is not None and _is_ip(source_ip):
            body["sourceIp"] = source_ip
        headers = {"X-Taskcluster-Trace-Id": trace_id} if trace_id and _is_token(trace_id) else None
        self.circuit.check()
        try:
            return await self._ask(orjson.dumps(body), headers)
        except AuthServiceError as error:
            self.circuit.trip(error)
            raise

    async def _probe(self) -> None:
        await self._ask(PROBE_BODY, None)

    async def _ask(self, body: bytes, headers: dict[str, str] | None) -> Verdict:
        """One `authenticateHawk` call; AuthServiceError unless it gives a verdict."""
        try:
            status, answer = await self._http().post_json(body, headers)
        except HttpError as error:
            raise AuthServiceError(f"auth service unreachable: {error}") from error
        if status != 200:
            raise AuthServiceError(f"auth service answered HTTP {status}")
        try:
            parsed = orjson.loads(answer)
        except orjson.JSONDecodeError as error:
            raise AuthServiceError("auth service answered invalid JSON") from error
        return _parse_verdict(parsed)

    async def close(self) -> None:
        await self.circuit.close()
        if self._client is not None:
            await self._client.close()
            self._client = None


def _is_token(text: str) -> bool:
    """Whether a caller's trace id can be passed on as a header value as it is."""
    return len(text) <= 256 and text.isascii() and text.isprintable()


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True

"""Where verdicts come from: our own clients file, or a Taskcluster deployment's auth service.

Both answer `authenticate(...)` with a `Verdict`; the API does not know which one it has.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any, Protocol

import httpx

from purgecache.auth import credentials
from purgecache.auth.clients import ClientStore
from purgecache.auth.credentials import Verdict
from purgecache.auth.scopes import ScopeSet, is_valid_scope
from purgecache.model import to_ms


class AuthServiceError(Exception):
    """The remote auth service could not give a verdict (unreachable, error, nonsense)."""


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

    def __init__(self, clients: ClientStore) -> None:
        self.clients = clients

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
        return self.authenticate_now(method, resource, host, port, authorization, now)

    def authenticate_now(
        self, method: str, resource: str, host: str, port: int, authorization: str | None, now: int
    ) -> Verdict:
        """The verdict, without awaiting anything (the clients are in memory)."""
        return credentials.authenticate(
            self.clients, method, resource, host, port, authorization, now
        )

    async def close(self) -> None:
        return None


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
    if not all(is_valid_scope(scope) for scope in scopes):
        raise AuthServiceError("the auth service answered invalid scopes")
    expires = answer.get("expires")
    try:
        expires_ms = (
            to_ms(datetime.fromisoformat(expires.replace("Z", "+00:00")))
            if isinstance(expires, str)
            else None
        )
    except ValueError as error:
        raise AuthServiceError("the auth service answered an invalid expires") from error
    client_id = answer.get("clientId")
    payload_hash = answer.get("hash")
    return Verdict(
        str(status),
        ScopeSet(scopes),
        client_id if isinstance(client_id, str) else None,
        payload_hash if isinstance(payload_hash, str) else None,
        expires_ms,
        str(answer.get("scheme", "none")),
    )


class RemoteAuthenticator:
    """Verdicts from `<auth root URL>/api/auth/v1/authenticate-hawk`, over pooled keep-alive
    connections. Verdicts are never cached: each request's nonce and timestamp differ.
    """

    def __init__(self, auth_root_url: str, *, timeout: float = 10.0) -> None:
        self.url = f"{auth_root_url.rstrip('/')}/api/auth/v1/authenticate-hawk"
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:  # created lazily, inside the worker's event loop
            self._client = httpx.AsyncClient(
                timeout=self.timeout,
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
            )
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
        headers = {"X-Taskcluster-Trace-Id": trace_id} if trace_id else {}
        try:
            response = await self._http().post(self.url, json=body, headers=headers)
        except httpx.HTTPError as error:
            raise AuthServiceError(f"auth service unreachable: {type(error).__name__}") from error
        if response.status_code != 200:
            raise AuthServiceError(f"auth service answered HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError as error:
            raise AuthServiceError("auth service answered invalid JSON") from error
        return _parse_verdict(answer)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True

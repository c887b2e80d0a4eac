"""Authorisation of API calls: who is calling (through an Authenticator) and whether their
scopes satisfy the endpoint's, with upstream's 401/403 bodies.
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable

from purgecache.api.errors import ApiError
from purgecache.api.request import Request
from purgecache.api.routes import Call
from purgecache.auth import credentials, hawk
from purgecache.auth.authenticators import Authenticator, AuthServiceError, LocalAuthenticator
from purgecache.auth.scopes import ScopeSet
from purgecache.logs import log_event

log = logging.getLogger("purgecache")

BAD_MAC = "Unauthorized: Bad mac"  # the one failure after which another spelling is tried


def _insufficient_scopes(verdict: credentials.Verdict, required: str) -> ApiError:
    if verdict.status == "no-auth":
        text = (
            "This request requires Taskcluster credentials that satisfy the following scope "
            "expression:\n\n```\n{{required}}\n```"
        )
    else:
        text = (
            f"Client ID {verdict.client_id} does not have sufficient scopes and is missing the "
            "following scopes:\n\n```\n{{unsatisfied}}\n```\n\nThis request requires the client "
            "to satisfy the following scope expression:\n\n```\n{{required}}\n```"
        )
    return ApiError("InsufficientScopes", text, {"required": required, "unsatisfied": required})


def hawk_host_port(request: Request) -> tuple[str, int]:
    """Host and port as the client saw them (auth.md §1.3), or a 400 when Host is unusable."""
    headers = request.headers
    found = host_port(
        headers.get("host", ""),
        headers.get("x-forwarded-port", ""),
        headers.get("x-forwarded-proto", ""),
        request.tls,
    )
    if found is None:
        raise ApiError("InvalidRequestArguments", "The request needs a valid Host header")
    return found


@functools.lru_cache(maxsize=256)  # a deployment sees very few distinct combinations
def host_port(
    host_header: str, forwarded_port: str, forwarded_proto: str, tls: bool
) -> tuple[str, int] | None:
    host, port_text = host_header, ""
    if host_header.startswith("["):
        end = host_header.find("]")
        host, port_text = host_header[1:end], host_header[end + 2 :]
    elif ":" in host_header:
        host, port_text = host_header.rsplit(":", 1)
    if not host or (port_text and not port_text.isdigit()):
        return None
    forwarded_port = forwarded_port.split(",")[0].strip()
    if forwarded_port.isdigit():
        return host.lower(), int(forwarded_port)
    if forwarded_proto.split(",")[0].strip() == "https":
        return host.lower(), 443
    if port_text:
        return host.lower(), int(port_text)
    return host.lower(), 443 if tls else 80


@functools.lru_cache(maxsize=64)
def empty_payload_hash(content_type: str | None) -> str:
    return hawk.payload_hash(content_type, b"")


class Authorizer:
    """Checks one call's credentials and scopes; the clock is read on every call."""

    def __init__(
        self,
        authenticator: Authenticator,
        now: Callable[[], int],
        api_base: str,
        trust_proxy: bool = False,
    ) -> None:
        self.authenticator = authenticator
        self.now = now
        self.api_base = api_base
        self.trust_proxy = trust_proxy

    def client_ip(self, request: Request) -> str | None:
        """The caller's address; X-Forwarded-For is believed only with --trust-proxy."""
        return self.client_address(request.headers.get("x-forwarded-for"), request.client_ip)

    def client_address(self, forwarded_for: str | None, peer: str | None) -> str | None:
        """The caller's address from X-Forwarded-For (only with --trust-proxy) or the peer."""
        if self.trust_proxy and forwarded_for:
            return forwarded_for.split(",")[0].strip()
        return peer

    async def authorize(self, request: Request, call: Call, required: str) -> None:
        """Authenticate the request and check it holds `required`; raise 401/403 otherwise."""
        host, port = hawk_host_port(request)
        verdict = await self.verdict(
            request.method,
            request.resources(self.api_base, call.params.get("workerPoolId")),
            host,
            port,
            request.headers.get("authorization"),
            self.client_ip(request),
            request.headers.get("x-taskcluster-trace-id"),
        )
        if not verdict.failed and verdict.hash is not None:
            verdict = check_payload_hash(request, verdict)
        if verdict.failed:
            raise ApiError(
                "AuthenticationFailed", verdict.message, headers=(("www-authenticate", "hawk"),)
            )
        call.client_id = verdict.client_id
        scopes = verdict.scopes or ScopeSet([])
        if not scopes.satisfies_scope(required):
            raise _insufficient_scopes(verdict, required)

    def local_verdict(
        self,
        method: str,
        resources: tuple[str, ...],
        host: str,
        port: int,
        authorization: str | None,
    ) -> credentials.Verdict | None:
        """Like `verdict`, without awaiting, when verdicts come from the clients file; None
        when they come from an auth service."""
        if not isinstance(self.authenticator, LocalAuthenticator):
            return None
        now = self.now()
        for resource in resources:
            verdict = self.authenticator.authenticate_now(
                method, resource, host, port, authorization, now
            )
            if verdict.message != BAD_MAC:
                break
        return verdict

    async def verdict(
        self,
        method: str,
        resources: tuple[str, ...],
        host: str,
        port: int,
        authorization: str | None,
        source_ip: str | None,
        trace_id: str | None,
    ) -> credentials.Verdict:
        """The authenticator's verdict, trying each spelling of the request target the client
        may have signed until one is not a bad MAC; 503 ApiError if no verdict can be had."""
        for resource in resources:
            try:
                verdict = await self.authenticator.authenticate(
                    method,
                    resource,
                    host,
                    port,
                    authorization,
                    now=self.now(),
                    source_ip=source_ip,
                    trace_id=trace_id,
                )
            except AuthServiceError as error:
                log_event(log, logging.WARNING, "auth-service-error", error=str(error))
                raise ApiError(
                    "ServiceUnavailable",
                    "The authentication service is unavailable; retry.",
                    headers=(("retry-after", "5"),),
                ) from error
            if verdict.message != BAD_MAC:
                break
        return verdict


def check_payload_hash(request: Request, verdict: credentials.Verdict) -> credentials.Verdict:
    """auth.md §1.4: a signed payload hash must match the body as received."""
    body = request.body if request.is_json else b""
    content_type = request.headers.get("content-type")
    computed = hawk.payload_hash(content_type, body) if body else empty_payload_hash(content_type)
    if hmac.compare_digest(computed.encode(), (verdict.hash or "").encode()):
        return verdict
    return credentials.failed(
        f"Invalid payload hash: {{{{hash}}}}\nComputed payload hash: {computed}\nThis "
        "happens when your request carries a signed hash of the payload and the hash "
        "doesn't match the hash we've computed on the server-side."
    )

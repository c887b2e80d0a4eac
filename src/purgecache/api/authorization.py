"""Authorisation of API calls: who is calling (through an Authenticator) and whether their
scopes satisfy the endpoint's, with upstream's 401/403 bodies.
"""

from __future__ import annotations

import functools
import hmac
import logging
import operator
from collections.abc import Callable

from purgecache.api.errors import ApiError
from purgecache.api.request import Call, Request
from purgecache.auth import credentials, hawk
from purgecache.auth.authenticators import Authenticator, AuthServiceError, LocalAuthenticator
from purgecache.auth.scopes import ScopeExpression, ScopeSet, unsatisfied
from purgecache.circuit import CircuitOpen
from purgecache.logs import log_event

log = logging.getLogger("purgecache")

BAD_MAC = "Unauthorized: Bad mac"  # the one failure after which another spelling is tried


def _insufficient_scopes(
    verdict: credentials.Verdict, required: ScopeExpression, held: ScopeSet
) -> ApiError:
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
    missing = unsatisfied(held, required)
    return ApiError("InsufficientScopes", text, {"required": required, "unsatisfied": missing})


def _signed_target(request: Request, call: Call) -> tuple[str, int, tuple[str, ...]]:
    """Host and port as the client saw them (auth.md §1.3; a 400 when Host is unusable) and
    the request targets it may have signed."""
    headers = request.headers
    found = host_port(
        headers.get("host", ""),
        headers.get("x-forwarded-port", ""),
        headers.get("x-forwarded-proto", ""),
        request.tls,
    )
    if found is None:
        raise ApiError("InvalidRequestArguments", "The request needs a valid Host header")
    return found[0], found[1], request.resources(call.params.get("workerPoolId"))


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


def bad_mac_hint(request: Request) -> str:
    """For the log line of a 401 "Bad mac": what the signature was checked against, which is
    what a proxy most often gets wrong (troubleshooting.md)."""
    headers = request.headers
    host_header = headers.get("host", "")
    proto, forwarded_port = headers.get("x-forwarded-proto"), headers.get("x-forwarded-port")
    found = host_port(host_header, forwarded_port or "", proto or "", request.tls)
    checked = f"{found[0]}:{found[1]}" if found else "(no usable Host)"
    return (
        f"checked against {checked} and path {request.path!r} (Host {host_header!r}, "
        f"X-Forwarded-Proto {proto!r}, X-Forwarded-Port {forwarded_port!r}); the client "
        "signed its own URL: a proxy must pass the original Host, and X-Forwarded-Proto: "
        "https when it ends TLS"
    )


@functools.lru_cache(maxsize=64)
def empty_payload_hash(content_type: str | None) -> str:
    return hawk.payload_hash(content_type, b"")


class Authorizer:
    """Who is calling (asked once per call) and whether they hold an endpoint's scopes; the
    clock is read on every call."""

    def __init__(
        self,
        authenticator: Authenticator,
        now: Callable[[], int],
        trust_proxy: bool = False,
    ) -> None:
        self.authenticator = authenticator
        self.local = authenticator if isinstance(authenticator, LocalAuthenticator) else None
        self.now = now
        # The caller's address (`Request.client_ip`, the peer's); X-Forwarded-For's first
        # entry only with --trust-proxy. An attrgetter without: every access line asks, and a
        # C call costs a fraction of a method's frame.
        self.client_ip: Callable[[Request], str | None] = (
            self._forwarded_ip if trust_proxy else operator.attrgetter("client_ip")
        )
        # Hawk id -> which spelling of a pool URL it signed last (remote verdicts only: a
        # seed-era client is then asked about once, not twice, per request).
        self._spelling: dict[str, int] = {}

    @staticmethod
    def _forwarded_ip(request: Request) -> str | None:
        """The first address in X-Forwarded-For, else the peer's (--trust-proxy)."""
        forwarded_for = request.headers.get("x-forwarded-for")
        if forwarded_for:
            return str(forwarded_for).split(",")[0].strip()
        return request.client_ip

    def verdict_now(self, request: Request, call: Call) -> credentials.Verdict | None:
        """The call's verdict without awaiting: already known, or given by the clients file;
        None when the auth service must be asked (`ask`)."""
        if call.verdict is not None or self.local is None:
            return call.verdict
        host, port, targets = _signed_target(request, call)
        authorization = request.headers.get("authorization")
        clients, now, method = self.local.clients, self.now(), request.method
        for target in targets:  # the spellings a client may have signed (RSGI), in turn
            verdict = credentials.authenticate(
                clients, method, target, host, port, authorization, now
            )
            if verdict.message != BAD_MAC:
                break
        call.signed_target = target
        return self._settle(request, call, verdict)

    async def ask(self, request: Request, call: Call) -> credentials.Verdict:
        """The auth service's verdict on the call (asked once per call); 503 ApiError if none
        can be had."""
        host, port, targets = _signed_target(request, call)
        authorization = request.headers.get("authorization")
        verdict, call.signed_target = await self._remote_verdict(
            request, targets, host, port, authorization
        )
        return self._settle(request, call, verdict)

    def _settle(
        self, request: Request, call: Call, verdict: credentials.Verdict
    ) -> credentials.Verdict:
        """Check a signed payload hash, and keep the verdict with the call."""
        if verdict.hash is not None and verdict.status != "auth-failed":
            verdict = check_payload_hash(request, verdict)
        call.verdict = verdict
        call.client_id = verdict.client_id
        return verdict

    def authenticated(self, verdict: credentials.Verdict) -> None:
        """401 when credentials were given and failed (anonymous callers pass)."""
        if verdict.status == "auth-failed":
            raise ApiError("AuthenticationFailed", verdict.message)

    def check(self, verdict: credentials.Verdict, required: ScopeExpression | None) -> None:
        """401 unless authenticated, 403 unless holding `required` (None: nothing is)."""
        if required is None:
            return
        self.authenticated(verdict)
        held = _NO_SCOPES if verdict.scopes is None else verdict.scopes
        if not (
            held.satisfies_scope(required) if type(required) is str else held.satisfies(required)
        ):
            raise _insufficient_scopes(verdict, required, held)

    async def _remote_verdict(
        self,
        request: Request,
        targets: tuple[str, ...],
        host: str,
        port: int,
        authorization: str | None,
    ) -> tuple[credentials.Verdict, str]:
        """Ask the auth service about each spelling the client may have signed, the one this
        client signed last first, until one is not a bad MAC; never past a failure. The
        verdict, and the target it was given for."""
        hawk_id = _hawk_id(authorization) if len(targets) > 1 else None
        first = self._spelling.get(hawk_id, 0) if hawk_id is not None else 0
        order = (targets[first], *targets[:first], *targets[first + 1 :])
        for target in order:
            try:
                verdict = await self.authenticator.authenticate(
                    request.method,
                    target,
                    host,
                    port,
                    authorization,
                    now=self.now(),
                    source_ip=self.client_ip(request),
                    trace_id=request.headers.get("x-taskcluster-trace-id"),
                )
            except AuthServiceError as error:
                if not isinstance(error, CircuitOpen):  # the circuit logs when it opens
                    log_event(log, logging.WARNING, "auth-service-error", error=str(error))
                raise ApiError(
                    "ServiceUnavailable", "The authentication service is unavailable; retry."
                ) from error
            if verdict.message != BAD_MAC:
                break
        if hawk_id is not None and not verdict.failed:
            if len(self._spelling) >= _SPELLINGS_KEPT:
                self._spelling.clear()
            self._spelling[hawk_id] = targets.index(target)
        return verdict, target


_NO_SCOPES = ScopeSet([])
_SPELLINGS_KEPT = 10_000


def _hawk_id(authorization: str | None) -> str | None:
    """The `id` attribute of a Hawk header, found cheaply (only used to order guesses)."""
    if authorization is None:
        return None
    start = authorization.find('id="')
    end = authorization.find('"', start + 4)
    return authorization[start + 4 : end] if start >= 0 and end > 0 else None


def check_payload_hash(request: Request, verdict: credentials.Verdict) -> credentials.Verdict:
    """auth.md §1.4: a signed payload hash must match the body as received."""
    body = request.body if request.is_json else b""
    content_type = request.headers.get("content-type")
    computed = hawk.payload_hash(content_type, body) if body else empty_payload_hash(content_type)
    if (
        verdict.hash is not None
        and verdict.hash.isascii()
        and hmac.compare_digest(computed, verdict.hash)
    ):
        return verdict
    return credentials.failed(
        f"Invalid payload hash: {{{{hash}}}}\nComputed payload hash: {computed}\nThis "
        "happens when your request carries a signed hash of the payload and the hash "
        "doesn't match the hash we've computed on the server-side."
    )

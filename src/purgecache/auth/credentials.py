"""Who is calling and with which scopes: permanent and temporary credentials, authorizedScopes,
headers and bewits (spec auth.md §1.8, §2, §3, §4), checked in upstream's order.

`authenticate` takes the `authenticateHawk` request fields plus a clock and returns a Verdict;
it is the same whether the caller is our API or a local `authenticateHawk` endpoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from purgecache.auth import hawk
from purgecache.auth.hawk import AuthFailure
from purgecache.auth.scopes import ScopeSet, is_valid_scope, js_number
from purgecache.hawk_mac import derived_access_token

ANONYMOUS = "assume:anonymous"
CERT_GRACE_MS = 300_000
CERT_MAX_MS = 31 * 86_400_000
NO_AUTH_LIFETIME_MS = 15 * 60_000
BOTH_SCHEMES = (
    "Cannot use two authentication schemes at once this request has both bewit in querystring "
    "and 'authorization' header"
)


@dataclass(frozen=True, slots=True)
class Client:
    """Permanent credentials.

    `scopes` are expanded through the roles, the anonymous role included (what a request gets);
    `issuer_scopes` are expanded without the anonymous role (what may be delegated).
    """

    client_id: str
    access_token: str
    scopes: ScopeSet
    issuer_scopes: ScopeSet
    expires: int | None = None  # ms since the epoch
    disabled: bool = False

    def __repr__(self) -> str:  # never show the secret
        return f"Client(client_id={self.client_id!r}, access_token=***)"


class ClientLookup(Protocol):
    """What authentication needs to know about clients and roles."""

    def client(self, client_id: str) -> Client | None:
        """The client with this id, or None."""

    @property
    def anonymous_scopes(self) -> ScopeSet:
        """Scopes of requests without credentials (the expanded anonymous role)."""

    def expand(self, scopes: Iterable[str]) -> ScopeSet:
        """Expand scopes through the roles (the caller adds `assume:anonymous` if wanted)."""


class Verdict(NamedTuple):  # a named tuple: made on every request, cheaper than a dataclass
    """Outcome of authenticating one request (the `authenticateHawk` answer)."""

    status: str  # "auth-success", "no-auth" or "auth-failed"
    scopes: ScopeSet | None = None
    client_id: str | None = None
    hash: str | None = None  # payload hash the client signed, if any
    expires: int | None = None  # ms since the epoch
    scheme: str = "none"
    message: str = ""

    @property
    def failed(self) -> bool:
        """Whether this is an `auth-failed` verdict."""
        return self.status == "auth-failed"


def failed(message: str) -> Verdict:
    """An `auth-failed` verdict."""
    return Verdict("auth-failed", message=message)


class _Resolved(NamedTuple):
    key: str
    client_id: str
    scopes: ScopeSet
    expires: int | None


def _present(ext: dict[str, object], key: str) -> bool:
    """Upstream's truthiness test, except that an empty list counts as present."""
    value = ext.get(key)
    if isinstance(value, list):
        return True
    return value not in (None, False, "", 0)


def _load_client(clients: ClientLookup, client_id: str, now: int) -> Client:
    client = clients.client(client_id)
    if client is None:
        raise AuthFailure(f"Client with clientId '{client_id}' not found")
    if client.disabled:
        raise AuthFailure(f"Client with clientId '{client_id}' is disabled")
    if client.expires is not None and client.expires < now:
        raise AuthFailure(f"Client with clientId: '{client_id}' has expired")
    return client


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_certificate_fields(cert: object) -> dict[str, object]:
    if not isinstance(cert, dict):
        raise AuthFailure("ext.certificate must be a JSON object")
    if not _is_number(cert.get("version")) or cert.get("version") != 1:
        raise AuthFailure("ext.certificate.version must be 1")
    seed = cert.get("seed")
    if not isinstance(seed, str):
        raise AuthFailure("ext.certificate.seed must be a string")
    if len(seed) != 44:
        raise AuthFailure("ext.certificate.seed must be 44 characters")
    if not _is_number(cert.get("start")):
        raise AuthFailure("ext.certificate.start must be a number")
    if not _is_number(cert.get("expiry")):
        raise AuthFailure("ext.certificate.expiry must be a number")
    scopes = cert.get("scopes")
    if not isinstance(scopes, list):
        raise AuthFailure("ext.certificate.scopes must be an array")
    if not all(is_valid_scope(scope) for scope in scopes):
        raise AuthFailure("ext.certificate.scopes must be an array of valid scopes")
    return cert


def _signature_text(cert: dict[str, object], name: str | None) -> str:
    lines = ["version:1"]
    if name is not None:
        lines += [f"clientId:{name}", f"issuer:{cert['issuer']}"]
    lines += [
        f"seed:{cert['seed']}",
        f"start:{js_number(cert['start'])}",  # type: ignore[arg-type]
        f"expiry:{js_number(cert['expiry'])}",  # type: ignore[arg-type]
        "scopes:",
        *(str(scope) for scope in cert["scopes"]),  # type: ignore[attr-defined]
    ]
    return "\n".join(lines)


def _check_certificate(
    raw: object, issuer: Client, hawk_id: str, named: bool, now: int
) -> dict[str, object]:
    """Checks 1-11 of auth.md §2.5; returns the certificate when it is good."""
    cert = _check_certificate_fields(raw)
    start, expiry = float(cert["start"]), float(cert["expiry"])  # type: ignore[arg-type]
    if start > now + CERT_GRACE_MS:
        raise AuthFailure("ext.certificate.start > now")
    if expiry < now - CERT_GRACE_MS:
        raise AuthFailure("ext.certificate.expiry < now")
    if expiry - start > CERT_MAX_MS:
        raise AuthFailure("ext.certificate cannot last longer than 31 days!")
    if named and not issuer.issuer_scopes.satisfies_scope(f"auth:create-client:{hawk_id}"):
        raise AuthFailure(
            f"ext.certificate issuer `{issuer.client_id}` doesn't have "
            f"`auth:create-client:{hawk_id}` for supplied clientId."
        )
    if not named and "clientId" in cert:
        raise AuthFailure("ext.certificate.clientId must only be used with ext.certificate.issuer")
    scopes = [str(scope) for scope in cert["scopes"]]  # type: ignore[attr-defined]
    if not all(issuer.issuer_scopes.satisfies_scope(scope) for scope in scopes):
        raise AuthFailure(
            f"ext.certificate issuer `{issuer.client_id}` doesn't satisfy all certificate "
            f"scopes {', '.join(scopes)}.  The temporary credentials were not generated correctly."
        )
    signature = cert.get("signature")
    signed_text = _signature_text(cert, hawk_id if named else None)
    expected = hawk.compute_mac(issuer.access_token, signed_text)
    if not isinstance(signature, str) or not hawk.same(expected, signature):
        suffix = ", or wrong clientId provided" if named else ""
        raise AuthFailure(f"ext.certificate.signature is not valid{suffix}")
    return cert


def _authorized_scopes(clients: ClientLookup, raw: object, held: ScopeSet) -> ScopeSet:
    """auth.md §3: the narrowed scope set, or AuthFailure."""
    if not isinstance(raw, list):
        raise AuthFailure("ext.authorizedScopes must be an array")
    if not all(is_valid_scope(scope) for scope in raw):
        raise AuthFailure("ext.authorizedScopes must be an array of valid scopes")
    wanted = [str(scope) for scope in raw]
    if not all(held.satisfies_scope(scope) for scope in wanted):
        raise AuthFailure(
            "Supplied credentials do not satisfy authorizedScopes; credentials have scopes:\n\n"
            "```\n"
            + "\n".join(held.scopes)
            + "\n```\n\nauthorizedScopes are:\n\n```\n"
            + "\n".join(wanted)
            + "\n```"
        )
    return clients.expand([*wanted, ANONYMOUS])


def resolve(clients: ClientLookup, hawk_id: str, ext_text: str, now: int) -> _Resolved:
    """The MAC key, client id, scopes and expiry for credentials named `hawk_id` with `ext`."""
    ext = hawk.decode_ext(ext_text) if ext_text else {}
    if not ext:  # the common case (`ext` of `{}` or none): the client's own credentials
        client = _load_client(clients, hawk_id, now)
        return _Resolved(client.access_token, hawk_id, client.scopes, client.expires)
    raw_cert = ext.get("certificate") if _present(ext, "certificate") else None
    issuer_id = raw_cert.get("issuer") if isinstance(raw_cert, dict) else None
    named = issuer_id not in (None, False, "", 0)
    if named and not isinstance(issuer_id, str):
        raise AuthFailure("ext.certificate.issuer must be a string")
    if named and issuer_id == hawk_id:
        raise AuthFailure("ext.certificate.issuer must differ from the supplied clientId")
    client = _load_client(clients, issuer_id if named else hawk_id, now)  # type: ignore[arg-type]
    resolved = _Resolved(client.access_token, hawk_id, client.scopes, client.expires)
    if raw_cert is not None:
        cert = _check_certificate(raw_cert, client, hawk_id, named, now)
        expiry = int(float(cert["expiry"]))  # type: ignore[arg-type]
        scopes = clients.expand([*(str(s) for s in cert["scopes"]), ANONYMOUS])  # type: ignore[attr-defined]
        expires = expiry if client.expires is None else min(client.expires, expiry)
        key = derived_access_token(client.access_token, str(cert["seed"]))
        resolved = _Resolved(key, hawk_id, scopes, expires)
    if _present(ext, "authorizedScopes"):
        narrowed = _authorized_scopes(clients, ext["authorizedScopes"], resolved.scopes)
        resolved = _Resolved(resolved.key, hawk_id, narrowed, resolved.expires)
    return resolved


def _verify_header(
    clients: ClientLookup,
    method: str,
    resource: str,
    host: str,
    port: int,
    authorization: str,
    now: int,
) -> Verdict:
    attributes = hawk.parse_header(authorization)
    who = resolve(clients, attributes["id"], attributes.get("ext", ""), now)
    normalized = hawk.header_mac_input(attributes, method, resource, host, port)
    if not hawk.same(hawk.compute_mac(who.key, normalized), attributes["mac"]):
        raise AuthFailure("Unauthorized: Bad mac")
    if abs(int(attributes["ts"]) * 1000 - now) > hawk.MAX_SKEW_MS:
        raise AuthFailure("Unauthorized: Stale timestamp")
    return Verdict(
        "auth-success", who.scopes, who.client_id, attributes.get("hash"), who.expires, "hawk"
    )


def _verify_bewit(
    clients: ClientLookup, method: str, resource: str, host: str, port: int, now: int
) -> Verdict:
    bewit = hawk.parse_bewit(method, resource)
    who = resolve(clients, bewit.client_id, bewit.ext, now)
    normalized = hawk.mac_input(
        "bewit", str(bewit.exp), "", "GET", bewit.resource, host, port, "", bewit.ext
    )
    if not hawk.same(hawk.compute_mac(who.key, normalized), bewit.mac):
        raise AuthFailure("Unauthorized: Bad mac")
    if bewit.exp * 1000 <= now:
        raise AuthFailure("Unauthorized: Access expired")
    return Verdict("auth-success", who.scopes, who.client_id, None, who.expires, "hawk")


def authenticate(
    clients: ClientLookup,
    method: str,
    resource: str,
    host: str,
    port: int,
    authorization: str | None,
    now: int,
) -> Verdict:
    """The verdict for one request: header, bewit, or none (the anonymous scopes)."""
    method = method.upper()
    try:
        if authorization is not None:
            if uses_both_schemes(resource, authorization):
                raise AuthFailure(BOTH_SCHEMES)
            return _verify_header(clients, method, resource, host, port, authorization, now)
        if hawk.HAS_BEWIT_RE.match(resource) is not None:
            return _verify_bewit(clients, method, resource, host, port, now)
    except AuthFailure as failure:
        return failed(str(failure))
    return Verdict("no-auth", clients.anonymous_scopes, expires=now + NO_AUTH_LIFETIME_MS)


def uses_both_schemes(resource: str, authorization: str | None) -> bool:
    """Whether a request has an Authorization header and a non-empty `bewit` parameter."""
    if authorization is None or "bewit=" not in resource:
        return False
    _, _, query = resource.partition("?")
    return any(
        name == "bewit" and value
        for name, _, value in (pair.partition("=") for pair in query.split("&"))
    )

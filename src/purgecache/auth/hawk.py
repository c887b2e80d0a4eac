"""Hawk request authentication as Taskcluster does it (spec auth.md §1).

Free of HTTP types: the caller hands over the method, the raw request target, the host and
port the client signed, and the Authorization header. Verdicts carry upstream's exact messages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Protocol

from purgecache.auth.scopes import ScopeSet

MAX_HEADER_LENGTH = 4096
MAX_SKEW_MS = 900_000  # 15 minutes either way, boundary included

_HEADER_RE = re.compile(r"(\w+)(?:\s+(.*))?")
_ATTRIBUTE_RE = re.compile(r'(\w+)="([^"\\]*)"\s*(?:,\s*|$)')
_VALUE_RE = re.compile(r"[ \w!#$%&'()*+,\-./:;<=>?@\[\]^`{|}~]+", re.ASCII)
_ATTRIBUTE_NAMES = frozenset(("id", "ts", "nonce", "hash", "ext", "mac", "app", "dlg"))
_REQUIRED = ("id", "ts", "nonce", "mac")
_TS_RE = re.compile(r"[0-9]{1,15}")


class AuthFailure(Exception):
    """Authentication failed; `str(self)` is the message the caller gets in the 401."""


@dataclass(frozen=True, slots=True)
class Client:
    """Permanent credentials and the (role-expanded) scopes they carry."""

    client_id: str
    access_token: str
    scopes: ScopeSet
    expires: int | None = None  # ms since the epoch
    disabled: bool = False

    def __repr__(self) -> str:  # never show the secret
        return f"Client(client_id={self.client_id!r}, access_token=***)"


class ClientLookup(Protocol):
    """What authentication needs to know about clients."""

    def client(self, client_id: str) -> Client | None:
        """The client with this id, or None."""

    @property
    def anonymous_scopes(self) -> ScopeSet:
        """Scopes of requests without credentials."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Outcome of authenticating one request (the `authenticateHawk` result)."""

    status: str  # "auth-success", "no-auth" or "auth-failed"
    scopes: ScopeSet | None = None
    client_id: str | None = None
    hash: str | None = None  # payload hash the client signed, if any
    message: str = ""

    @property
    def failed(self) -> bool:
        """Whether this is an `auth-failed` verdict."""
        return self.status == "auth-failed"


def parse_header(header: str) -> dict[str, str]:
    """The attributes of a Hawk Authorization header, or AuthFailure with upstream's text."""
    if len(header) > MAX_HEADER_LENGTH:
        raise AuthFailure("Bad Request: Header length too long")
    parts = _HEADER_RE.fullmatch(header)
    if parts is None:
        raise AuthFailure("Bad Request: Invalid header syntax")
    if parts[1].lower() != "hawk":
        raise AuthFailure("Unauthorized: Unauthorized")
    rest = parts[2]
    if not rest:
        raise AuthFailure("Bad Request: Invalid header syntax")
    attributes: dict[str, str] = {}
    error, covered = "", 0
    for match in _ATTRIBUTE_RE.finditer(rest):
        name, value = match[1], match[2]
        if name not in _ATTRIBUTE_NAMES:
            error = f"Unknown attribute: {name}"
        elif _VALUE_RE.fullmatch(value) is None:
            error = f"Bad attribute value: {name}"
        elif name in attributes:
            error = f"Duplicate attribute: {name}"
        else:
            attributes[name] = value
            covered += len(match[0])
    if error or covered != len(rest):
        raise AuthFailure(f"Bad Request: {error or 'Bad header format'}")
    if any(name not in attributes for name in _REQUIRED):
        raise AuthFailure("Bad Request: Missing attributes")
    return attributes


def mac_input(
    kind: str, attributes: dict[str, str], method: str, resource: str, host: str, port: int
) -> str:
    """The normalized string Hawk signs (`kind` is `header` or `bewit`)."""
    lines = [
        f"hawk.1.{kind}",
        attributes["ts"],
        attributes.get("nonce", ""),
        method.upper(),
        resource,
        host.lower(),
        str(port),
        attributes.get("hash", ""),
        attributes.get("ext", "").replace("\\", "\\\\").replace("\n", "\\n"),
    ]
    if "app" in attributes:
        lines += [attributes["app"], attributes.get("dlg", "")]
    return "\n".join(lines) + "\n"


def compute_mac(key: str, normalized: str) -> str:
    """Standard base64 of HMAC-SHA256 of the normalized string."""
    digest = hmac.digest(key.encode("utf-8"), normalized.encode("utf-8"), hashlib.sha256)
    return base64.b64encode(digest).decode("ascii")


def payload_hash(content_type: str | None, body: bytes) -> str:
    """The Hawk payload hash of a body sent with `content_type`."""
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    digest = hashlib.sha256(b"hawk.1.payload\n" + mime.encode() + b"\n" + body + b"\n").digest()
    return base64.b64encode(digest).decode("ascii")


def decode_ext(ext: str) -> dict[str, object]:
    """Decode `ext`: base64 (standard or URL-safe, padding optional) of a JSON object."""
    try:
        raw = base64.b64decode(ext.replace("-", "+").replace("_", "/") + "=" * (-len(ext) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError) as error:
        raise AuthFailure("Failed to parse ext") from error
    if not isinstance(value, dict):
        raise AuthFailure("Failed to parse ext")
    return value


def _present(ext: dict[str, object], key: str) -> bool:
    """Upstream's truthiness test, except that an empty list counts as present."""
    value = ext.get(key)
    return value not in (None, False, "", 0) or isinstance(value, list)


def _load_client(clients: ClientLookup, client_id: str, now: int) -> Client:
    client = clients.client(client_id)
    if client is None:
        raise AuthFailure(f"Client with clientId '{client_id}' not found")
    if client.disabled:
        raise AuthFailure(f"Client with clientId '{client_id}' is disabled")
    if client.expires is not None and client.expires < now:
        raise AuthFailure(f"Client with clientId: '{client_id}' has expired")
    return client


def verify_header(
    clients: ClientLookup,
    method: str,
    resource: str,
    host: str,
    port: int,
    authorization: str,
    now: int,
) -> Verdict:
    """Authenticate a request carrying a Hawk Authorization header."""
    try:
        attributes = parse_header(authorization)
        if not _TS_RE.fullmatch(attributes["ts"]):
            raise AuthFailure("Bad Request: Invalid timestamp")
        ext = decode_ext(attributes["ext"]) if "ext" in attributes else {}
        client = _load_client(clients, attributes["id"], now)
        if _present(ext, "certificate") or _present(ext, "authorizedScopes"):
            raise AuthFailure(
                "temporary credentials and authorizedScopes are not supported by this service yet"
            )
        expected = compute_mac(
            client.access_token, mac_input("header", attributes, method, resource, host, port)
        )
        if not hmac.compare_digest(expected.encode(), attributes["mac"].encode()):
            raise AuthFailure("Unauthorized: Bad mac")
        if abs(int(attributes["ts"]) * 1000 - now) > MAX_SKEW_MS:
            raise AuthFailure("Unauthorized: Stale timestamp")
    except AuthFailure as failure:
        return Verdict("auth-failed", message=str(failure))
    return Verdict(
        "auth-success",
        scopes=client.scopes,
        client_id=client.client_id,
        hash=attributes.get("hash"),
    )


def authenticate(
    clients: ClientLookup,
    method: str,
    resource: str,
    host: str,
    port: int,
    authorization: str | None,
    now: int,
) -> Verdict:
    """The verdict for one request: no credentials get the anonymous scopes."""
    if authorization is None:
        return Verdict("no-auth", scopes=clients.anonymous_scopes)
    return verify_header(clients, method, resource, host, port, authorization, now)

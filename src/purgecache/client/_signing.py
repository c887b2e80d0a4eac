"""Signing requests the way the official Python client does (auth.md §1, §4, §8).

The Hawk header carries a payload hash (also for a GET) and an `ext` of URL-safe base64 JSON
holding the certificate of temporary credentials and `authorizedScopes`; plain credentials
send `e30=` (`{}`). Bewits sign a GET URL until an absolute expiry. The MAC arithmetic is
the one the server verifies with (`purgecache.hawk_mac`), so both sides agree by construction;
the vectors in the shared spec pin it against the official client.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import time
from collections.abc import Generator, Sequence
from urllib.parse import urlsplit, urlunsplit

import httpx

from purgecache.client._credentials import Credentials
from purgecache.hawk_mac import compute_mac, mac_input, payload_hash

_NONCE_ALPHABET = string.ascii_letters + string.digits
_DEFAULT_PORTS = {"http": 80, "https": 443}


def hawk_ext(credentials: Credentials, authorized_scopes: Sequence[str] | None = None) -> str:
    """The `ext` attribute: certificate and authorizedScopes, URL-safe base64 of JSON."""
    ext: dict[str, object] = {}
    certificate = credentials.certificate_object()
    if certificate is not None:
        ext["certificate"] = certificate
    if authorized_scopes is not None:
        ext["authorizedScopes"] = list(authorized_scopes)
    text = json.dumps(ext, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii")


def new_nonce() -> str:
    """Six random letters and digits, as mohawk makes them."""
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(6))


def authorization_header(
    credentials: Credentials,
    *,
    method: str,
    resource: str,
    host: str,
    port: int,
    content_type: str,
    body: bytes,
    ts: int,
    nonce: str,
    authorized_scopes: Sequence[str] | None = None,
) -> str:
    """The Hawk `Authorization` header for one request (attributes in mohawk's order)."""
    ext = hawk_ext(credentials, authorized_scopes)
    body_hash = payload_hash(content_type, body)
    normalized = mac_input("header", str(ts), nonce, method, resource, host, port, body_hash, ext)
    mac = compute_mac(credentials.access_token, normalized)
    return (
        f'Hawk mac="{mac}", hash="{body_hash}", id="{credentials.client_id}", '
        f'ts="{ts}", nonce="{nonce}", ext="{ext}"'
    )


def bewit(
    credentials: Credentials,
    *,
    resource: str,
    host: str,
    port: int,
    expires_at: int,
    authorized_scopes: Sequence[str] | None = None,
) -> str:
    """The `bewit` value signing a GET of `resource` until `expires_at` (Unix seconds)."""
    ext = hawk_ext(credentials, authorized_scopes)
    normalized = mac_input("bewit", str(expires_at), "", "GET", resource, host, port, "", ext)
    mac = compute_mac(credentials.access_token, normalized)
    raw = f"{credentials.client_id}\\{expires_at}\\{mac}\\{ext}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def hawk_target(url: httpx.URL) -> tuple[str, str, int]:
    """`(resource, host, port)` as the server sees them: raw path and query, lower-cased
    host, explicit or default port."""
    port = url.port or _DEFAULT_PORTS[url.scheme]
    return url.raw_path.decode("ascii"), url.raw_host.decode("ascii").lower(), port


def signed_url(
    url: str,
    credentials: Credentials,
    *,
    expires_at: int,
    authorized_scopes: Sequence[str] | None = None,
) -> str:
    """`url` with a bewit appended last, as the Python client's `buildSignedUrl` does."""
    resource, host, port = hawk_target(httpx.URL(url))
    value = bewit(
        credentials,
        resource=resource,
        host=host,
        port=port,
        expires_at=expires_at,
        authorized_scopes=authorized_scopes,
    )
    parts = urlsplit(url)
    query = f"{parts.query}&bewit={value}" if parts.query else f"bewit={value}"
    return urlunsplit(parts._replace(query=query))


class HawkAuth(httpx.Auth):
    """httpx auth signing every request with Hawk, as Taskcluster expects.

    Usable on its own: `httpx.get(url, auth=HawkAuth(credentials))`.
    """

    requires_request_body = True

    def __init__(
        self, credentials: Credentials, authorized_scopes: Sequence[str] | None = None
    ) -> None:
        self.credentials = credentials
        self.authorized_scopes = None if authorized_scopes is None else tuple(authorized_scopes)

    def sign(self, request: httpx.Request) -> None:
        """Set the request's `Authorization` header (fresh timestamp and nonce)."""
        resource, host, port = hawk_target(request.url)
        request.headers["Authorization"] = authorization_header(
            self.credentials,
            method=request.method,
            resource=resource,
            host=host,
            port=port,
            content_type=request.headers.get("content-type", ""),
            body=request.content,
            ts=int(time.time()),
            nonce=new_nonce(),
            authorized_scopes=self.authorized_scopes,
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Sign, then send."""
        self.sign(request)
        yield request

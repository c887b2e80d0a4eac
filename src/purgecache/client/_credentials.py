"""Taskcluster credentials: permanent, temporary (minted offline, auth.md §2), and from the
environment (`TASKCLUSTER_*`, as the official clients read them).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from purgecache.client._errors import ConfigurationError
from purgecache.hawk_mac import compute_mac, derived_access_token
from purgecache.model import to_ms

MAX_TEMPORARY_LIFETIME = timedelta(days=31)


@dataclass(frozen=True, slots=True)
class Credentials:
    """A client id and its access token; `certificate` (the JSON text) makes them temporary.

    The repr never shows the access token.
    """

    client_id: str
    access_token: str = field(repr=False)
    certificate: str | None = None

    def __post_init__(self) -> None:
        if not self.client_id or not self.access_token:
            raise ConfigurationError("credentials need both a client id and an access token")
        if self.certificate is not None:
            self.certificate_object()

    def certificate_object(self) -> dict[str, object] | None:
        """The certificate as a JSON object (key order kept), or None."""
        if self.certificate is None:
            return None
        try:
            value = json.loads(self.certificate)
        except ValueError as error:
            raise ConfigurationError(f"the certificate is not JSON: {error}") from error
        if not isinstance(value, dict):
            raise ConfigurationError("the certificate must be a JSON object")
        return value


def _slug_id() -> str:
    """A "nice" slugid, as the clients use for seeds: a UUIDv4 not starting with `-`."""
    raw = bytearray(uuid.uuid4().bytes)
    raw[0] &= 0x7F
    return base64.urlsafe_b64encode(bytes(raw)).decode("ascii").rstrip("=")


def _signature_text(certificate: Mapping[str, object], scopes: list[str], name: str | None) -> str:
    """What the issuer signs (auth.md §2.4); the name lines only for named credentials."""
    lines = ["version:1"]
    if name is not None:
        lines += [f"clientId:{name}", f"issuer:{certificate['issuer']}"]
    lines += [
        f"seed:{certificate['seed']}",
        f"start:{certificate['start']}",
        f"expiry:{certificate['expiry']}",
        "scopes:",
        *scopes,
    ]
    return "\n".join(lines)


def _check_temporary(
    issuer: Credentials, scopes: Sequence[str], start: datetime, expiry: datetime, name: str | None
) -> None:
    if issuer.certificate is not None:
        raise ConfigurationError("temporary credentials cannot issue temporary credentials")
    if isinstance(scopes, str) or not all(isinstance(scope, str) for scope in scopes):
        raise ConfigurationError("scopes must be a list of strings")
    if not start < expiry <= start + MAX_TEMPORARY_LIFETIME:
        raise ConfigurationError("temporary credentials must expire after start, within 31 days")
    if name == issuer.client_id:
        raise ConfigurationError("the name of temporary credentials must differ from the issuer")


def create_temporary_credentials(
    issuer: Credentials,
    scopes: Sequence[str],
    *,
    expiry: datetime,
    start: datetime | None = None,
    name: str | None = None,
    seed: str | None = None,
) -> Credentials:
    """Mint temporary credentials offline from permanent ones (auth.md §2.3, §2.4, §2.7).

    They hold `scopes` (which the issuer must hold) from `start` (default now) until `expiry`,
    at most 31 days later. With `name` they are *named* credentials: the issuer needs
    `auth:create-client:<name>`. `seed` is for reproducible tests only.
    """
    start = start or datetime.now(UTC)
    _check_temporary(issuer, scopes, start, expiry, name)
    certificate: dict[str, object] = {
        "version": 1,
        "scopes": list(scopes),
        "start": to_ms(start),
        "expiry": to_ms(expiry),
        "seed": seed or _slug_id() + _slug_id(),
    }
    if name is not None:
        certificate["issuer"] = issuer.client_id
    text = _signature_text(certificate, list(scopes), name)
    certificate["signature"] = compute_mac(issuer.access_token, text)
    return Credentials(
        name or issuer.client_id,
        derived_access_token(issuer.access_token, str(certificate["seed"])),
        json.dumps(certificate, separators=(",", ":")),
    )


def settings_from_env(environ: Mapping[str, str]) -> tuple[str, Credentials | None]:
    """Root URL and credentials from `TASKCLUSTER_*` variables.

    `TASKCLUSTER_PROXY_URL`, when set and not empty, wins: requests then go to the proxy
    unsigned (the proxy signs them). Otherwise `TASKCLUSTER_ROOT_URL` with
    `TASKCLUSTER_CLIENT_ID`, `TASKCLUSTER_ACCESS_TOKEN` and `TASKCLUSTER_CERTIFICATE`; no
    client id means no credentials.
    """
    proxy_url = environ.get("TASKCLUSTER_PROXY_URL", "")
    if proxy_url:
        return proxy_url, None
    root_url = environ.get("TASKCLUSTER_ROOT_URL", "")
    if not root_url:
        raise ConfigurationError("set TASKCLUSTER_ROOT_URL (or TASKCLUSTER_PROXY_URL)")
    client_id = environ.get("TASKCLUSTER_CLIENT_ID", "")
    if not client_id:
        return root_url, None
    access_token = environ.get("TASKCLUSTER_ACCESS_TOKEN", "")
    if not access_token:
        raise ConfigurationError("TASKCLUSTER_CLIENT_ID is set but TASKCLUSTER_ACCESS_TOKEN is not")
    certificate = environ.get("TASKCLUSTER_CERTIFICATE") or None
    return root_url, Credentials(client_id, access_token, certificate)

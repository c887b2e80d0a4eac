"""What our client signs is what the official Python client signs: the Hawk vectors of the
shared spec (vectors/hawk.json), replayed with each case's pinned timestamp, nonce, expiry and
seed. Headers and signed URLs must come out byte for byte as recorded, the MAC input as the
server computes it, and minted temporary credentials with the recorded token and signature.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from purgecache.auth.hawk import mac_input, payload_hash
from purgecache.client import ConfigurationError, Credentials, HawkAuth
from purgecache.client import create_temporary_credentials as mint
from purgecache.client._signing import authorization_header, hawk_ext, hawk_target, signed_url

from support.hawk_vectors import load_vectors

VECTORS = load_vectors()
if VECTORS is None:
    pytest.skip("shared spec vectors/hawk.json not found", allow_module_level=True)
CASES: list[dict[str, Any]] = VECTORS["cases"]

# Cases the official Python client produced unedited (a generator-built certificate is still
# signed by the client).
PYTHON_CLIENT = ("python-client", "generator-built certificate, request signed by python-client")
HEADER_CASES = [
    c for c in CASES if c["generatedBy"] in PYTHON_CLIENT and c["request"]["authorization"]
]
BEWIT_CASES = [c for c in CASES if c["generatedBy"] == "python-client buildSignedUrl"]
MINTED_CASES = [
    c
    for c in CASES
    if c["generatedBy"].startswith("python-client")
    and "(" not in c["generatedBy"]
    and "temporaryCredentials" in c
    and c["temporaryCredentials"]["expectedSignature"]
    == c["temporaryCredentials"]["certificateSignature"]
]


def case_ids(cases: list[dict[str, Any]]) -> list[str]:
    return [case["id"] for case in cases]


def credentials_of(case: dict[str, Any]) -> Credentials:
    return Credentials(case["clientId"], case["accessToken"], case.get("certificate"))


def test_the_vectors_cover_every_kind_of_case() -> None:
    """Enough cases are replayed: plain, temporary, authorizedScopes, bewits, minting."""
    assert len(HEADER_CASES) >= 30 and len(BEWIT_CASES) >= 4 and len(MINTED_CASES) >= 8
    assert any("authorizedScopes" in case for case in HEADER_CASES)
    assert any("certificate" in case for case in BEWIT_CASES)


@pytest.mark.parametrize("case", HEADER_CASES, ids=case_ids(HEADER_CASES))
def test_header_is_the_official_clients(case: dict[str, Any]) -> None:
    """With the case's ts and nonce our Authorization header equals the recorded one."""
    request, hawk = case["request"], case["hawk"]
    resource, host, port = hawk_target(httpx.URL(request["url"]))
    header = authorization_header(
        credentials_of(case),
        method=request["method"],
        resource=resource,
        host=host,
        port=port,
        content_type=request["contentType"] or "",
        body=request["body"].encode(),
        ts=hawk["ts"],
        nonce=hawk["nonce"],
        authorized_scopes=case.get("authorizedScopes"),
    )
    assert header == request["authorization"]


@pytest.mark.parametrize("case", HEADER_CASES, ids=case_ids(HEADER_CASES))
def test_mac_input_is_what_the_server_computes(case: dict[str, Any]) -> None:
    """The string we sign, with the server's host and port, is the case's `hawk.macInput`."""
    request, hawk, server = case["request"], case["hawk"], case["server"]
    resource, _, _ = hawk_target(httpx.URL(request["url"]))
    content_type = request["contentType"] or ""
    ext = hawk_ext(credentials_of(case), case.get("authorizedScopes"))
    signed = mac_input(
        "header",
        str(hawk["ts"]),
        hawk["nonce"],
        request["method"],
        resource,
        server["host"],
        server["port"],
        payload_hash(content_type, request["body"].encode()),
        ext,
    )
    assert signed == hawk["macInput"]


@pytest.mark.parametrize("case", BEWIT_CASES, ids=case_ids(BEWIT_CASES))
def test_signed_url_is_the_official_clients(case: dict[str, Any]) -> None:
    """With the case's expiry our signed URL equals the recorded one, bewit and all."""
    url = httpx.URL(case["request"]["url"])
    unsigned = f"{url.scheme}://{url.netloc.decode()}{case['hawk']['resourceWithoutBewit']}"
    ours = signed_url(
        unsigned,
        credentials_of(case),
        expires_at=int(case["hawk"]["bewitDecoded"]["exp"]),
        authorized_scopes=case.get("authorizedScopes"),
    )
    assert ours == case["request"]["url"]


def _ms(value: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=value)


@pytest.mark.parametrize("case", MINTED_CASES, ids=case_ids(MINTED_CASES))
def test_minted_temporary_credentials_are_the_official_clients(case: dict[str, Any]) -> None:
    """Same issuer, scopes, times, name and seed: same certificate, signature and token."""
    recorded = case["temporaryCredentials"]
    certificate = json.loads(case["certificate"])
    issuer = Credentials(recorded["issuerClientId"], recorded["issuerAccessToken"])
    name = case["clientId"] if recorded["named"] else None
    options = {"start": _ms(certificate["start"]), "expiry": _ms(certificate["expiry"])}
    if name == issuer.client_id:
        with pytest.raises(ConfigurationError, match="must differ from the issuer"):
            mint(issuer, certificate["scopes"], name=name, seed=recorded["seed"], **options)
        return
    minted = mint(issuer, certificate["scopes"], name=name, seed=recorded["seed"], **options)
    assert minted.client_id == case["clientId"]
    assert minted.access_token == recorded["derivedAccessToken"]
    assert minted.certificate == case["certificate"]
    assert minted.certificate is not None
    assert json.loads(minted.certificate)["signature"] == recorded["expectedSignature"]


def test_hawk_auth_signs_what_it_sends() -> None:
    """`HawkAuth` (usable with plain httpx) signs the request's own method, target and body."""
    request = httpx.Request(
        "POST",
        "http://localhost:8080/api/purge-cache/v1/purge-cache/a%2Fb?x=1",
        content=b'{"cacheName":"c"}',
        headers={"content-type": "application/json"},
    )
    auth = HawkAuth(Credentials("me", "secret"), ["purge-cache:a/b:c"])
    auth.sign(request)
    header = request.headers["authorization"]
    attributes = dict(part.split("=", 1) for part in header.removeprefix("Hawk ").split(", "))
    expected = authorization_header(
        Credentials("me", "secret"),
        method="POST",
        resource="/api/purge-cache/v1/purge-cache/a%2Fb?x=1",
        host="localhost",
        port=8080,
        content_type="application/json",
        body=b'{"cacheName":"c"}',
        ts=int(attributes["ts"].strip('"')),
        nonce=attributes["nonce"].strip('"'),
        authorized_scopes=["purge-cache:a/b:c"],
    )
    assert header == expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"expiry_days": 32}, "within 31 days"),
        ({"expiry_days": -1}, "within 31 days"),
        ({"name": "issuer"}, "must differ"),
        ({"scopes": "purge-cache:*"}, "list of strings"),
    ],
)
def test_minting_refuses_what_the_server_would_refuse(
    options: dict[str, Any], message: str
) -> None:
    """More than 31 days, expiry before start, name == issuer, scopes as a string: refused."""
    start = datetime(2030, 1, 1, tzinfo=UTC)
    with pytest.raises(ConfigurationError, match=message):
        mint(
            Credentials("issuer", "token"),
            options.get("scopes", ["*"]),
            start=start,
            expiry=start + timedelta(days=options.get("expiry_days", 1)),
            name=options.get("name"),
        )


def test_temporary_credentials_cannot_mint_more() -> None:
    """Credentials with a certificate cannot issue temporary credentials."""
    expiry = datetime.now(UTC) + timedelta(hours=1)
    temporary = mint(Credentials("issuer", "token"), ["*"], expiry=expiry)
    with pytest.raises(ConfigurationError, match="cannot issue"):
        mint(temporary, ["*"], expiry=expiry)


def test_credentials_never_show_the_access_token() -> None:
    """repr() of credentials and of a client leave the secret out."""
    credentials = Credentials("me", "s3cret-token")
    assert "s3cret" not in repr(credentials)
    assert "s3cret" not in repr(HawkAuth(credentials).credentials)


@pytest.mark.parametrize(
    ("client_id", "token", "certificate"),
    [("", "t", None), ("me", "", None), ("me", "t", "not json"), ("me", "t", "[1]")],
)
def test_incomplete_or_broken_credentials_are_refused(
    client_id: str, token: str, certificate: str | None
) -> None:
    """An empty id or token, or a certificate that is not a JSON object: ConfigurationError."""
    with pytest.raises(ConfigurationError):
        Credentials(client_id, token, certificate)

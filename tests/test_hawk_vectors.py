"""The Hawk vectors (spec/vectors/hawk.json, auth.md §10) against the service.

Two ways, both parametrised over all 61 cases with the case ids as test ids:

* live: each case's `request` is sent over a real loopback socket to granian serving the real
  app (`tests/support/vector_app.py`), built from the vectors' `world` (clients, roles and the
  `anonymous` role as `anonymous_scopes`), with the case's `server.now` as the service clock
  (`X-Test-Now-Ms`). The target is sent byte-for-byte; `Host` is `server.host`, and the port
  the server must derive (auth.md §1.3) is conveyed by `X-Forwarded-Proto: https` for 443,
  nothing for 80, or a port in `Host` otherwise. Checked: status, error `code`, the message
  before the footer, the footer itself (method, code, status and the case's clock), and
  `WWW-Authenticate`.
* unit: each case's `authenticateHawkRequest` goes straight to
  `purgecache.auth.credentials.authenticate` with the case's clock, compared with
  `expected.authenticateHawkResponse` field for field (`status`, `scheme`, `clientId`, `scopes`
  as a set, `expires`, `hash`, `message`).

One deliberate difference (issue 3): our continuation tokens are our own, so the case that sends
`continuationToken=abc` gets our 400 `InputError` instead of upstream's 200 page.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest

from purgecache.auth import credentials
from purgecache.auth.clients import ClientStore, parse_clients
from purgecache.model import format_time

from support.hawk_vectors import Case, clients_toml, load_vectors
from support.vector_server import VectorServer, start_vector_server

VECTORS = load_vectors()
if VECTORS is None:
    pytest.skip("shared spec vectors/hawk.json not found", allow_module_level=True)
WORLD: dict[str, Any] = VECTORS["world"]
CASES: list[Case] = VECTORS["cases"]
# Where we knowingly answer differently from upstream: case id -> expected.http override.
OUR_ANSWERS: dict[str, dict[str, Any]] = {
    "plain-get-allPurgeRequests-via-role": {
        "status": 400,
        "code": "InputError",
        "message": "invalid continuation token",
    },
}
FOOTER = "\n\n---\n\n"


def _params() -> list[Any]:
    """One pytest param per case, id = case id."""
    return [pytest.param(case, id=case["id"]) for case in CASES]


@pytest.fixture(scope="module", params=["rsgi", "asgi"])
def vector_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VectorServer]:
    """granian serving the vector app over each interface, shared by the live cases."""
    server = start_vector_server(
        tmp_path_factory.mktemp("hawk-vectors"),
        clients_toml(WORLD),
        WORLD["rootUrl"],
        request.param,
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def vector_clients() -> ClientStore:
    """The world's clients, parsed exactly as the live server parses its clients file."""
    return parse_clients(tomllib.loads(clients_toml(WORLD)))


def split_url(url: str) -> tuple[str, str]:
    """`(authority, raw target)` of an absolute URL, without decoding or re-encoding anything."""
    rest = url.split("://", 1)[1]
    slash = rest.find("/")
    return (rest, "/") if slash < 0 else (rest[:slash], rest[slash:])


def host_headers(host: str, port: int) -> list[tuple[str, str]]:
    """Headers that make the server derive exactly `host` and `port` for the MAC (§1.3)."""
    if port == 443:
        return [("Host", host), ("X-Forwarded-Proto", "https")]
    if port == 80:
        return [("Host", host)]
    return [("Host", f"{host}:{port}")]


def send_case(server: VectorServer, case: Case, extra: list[tuple[str, str]] | None = None) -> Any:
    """Send the case's request as recorded, with the case's clock; return the response."""
    request, where = case["request"], case["server"]
    headers = extra if extra is not None else host_headers(where["host"], where["port"])
    if request["contentType"] is not None:
        headers = [*headers, ("Content-Type", request["contentType"])]
    if request["authorization"] is not None:
        headers = [*headers, ("Authorization", request["authorization"])]
    body = request["body"].encode("utf-8")
    send_body = body if body or request["method"] not in ("GET", "HEAD") else None
    return server.request(
        request["method"],
        split_url(request["url"])[1],
        headers,
        send_body,
        now_ms=where["now"] * 1000,
    )


@pytest.mark.parametrize("case", _params())
def test_live_vector(vector_server: VectorServer, case: Case) -> None:
    """The live server answers the recorded request with the expected status, error and header."""
    expected = OUR_ANSWERS.get(case["id"], case["expected"]["http"])
    response = send_case(vector_server, case)
    body_text = response.body.decode("utf-8", "replace")
    assert response.status == expected["status"], body_text
    if expected["status"] >= 400:
        body = json.loads(response.body)
        assert body["code"] == expected["code"]
        text, _, footer = body["message"].partition(FOOTER)
        assert text == expected["message"]
        assert footer == (
            f"* method:     {case['endpoint']}\n* errorCode:  {expected['code']}\n"
            f"* statusCode: {expected['status']}\n* time:       {case['server']['nowIso']}"
        )
    assert response.headers.get("www-authenticate") == expected.get("wwwAuthenticate")


def test_live_forwarded_port_sets_mac_port(vector_server: VectorServer) -> None:
    """`X-Forwarded-Port: 443` with a bare Host makes the server use port 443 for the MAC."""
    case = next(c for c in CASES if c["id"] == "plain-post-purgeCache")
    headers = [("Host", case["server"]["host"]), ("X-Forwarded-Port", "443")]
    response = send_case(vector_server, case, extra=headers)
    assert response.status == case["expected"]["http"]["status"], response.body


def test_live_without_forwarding_uses_port_80(vector_server: VectorServer) -> None:
    """Without forwarding headers a plain-HTTP server assumes port 80, so a 443 MAC fails."""
    case = next(c for c in CASES if c["id"] == "plain-post-purgeCache")
    response = send_case(vector_server, case, extra=[("Host", case["server"]["host"])])
    assert response.status == 401
    assert json.loads(response.body)["message"].startswith("Unauthorized: Bad mac" + FOOTER)


def verdict_as_response(verdict: credentials.Verdict) -> dict[str, Any]:
    """The `authenticateHawk` answer (auth.md §6) for a verdict."""
    if verdict.status == "auth-failed":
        return {"status": verdict.status, "message": verdict.message}
    answer: dict[str, Any] = {
        "status": verdict.status,
        "scheme": verdict.scheme,
        "scopes": sorted(verdict.scopes.scopes) if verdict.scopes is not None else None,
        "expires": format_time(verdict.expires) if verdict.expires is not None else None,
    }
    if verdict.client_id is not None:
        answer["clientId"] = verdict.client_id
    if verdict.hash is not None:
        answer["hash"] = verdict.hash
    return answer


@pytest.mark.parametrize("case", _params())
def test_unit_vector(vector_clients: ClientStore, case: Case) -> None:
    """`authenticate` on the case's authenticateHawk body matches the recorded answer."""
    body = case["authenticateHawkRequest"]
    verdict = credentials.authenticate(
        vector_clients,
        body["method"],
        body["resource"],
        body["host"],
        body["port"],
        body.get("authorization"),
        case["server"]["now"] * 1000,
    )
    expected = {
        key: sorted(value) if key == "scopes" else value
        for key, value in case["expected"]["authenticateHawkResponse"].items()
    }
    assert verdict_as_response(verdict) == expected


def test_vector_ids_are_unique() -> None:
    """Every case in hawk.json has a distinct id, so each appears exactly once per test set."""
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids))

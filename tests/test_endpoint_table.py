"""The endpoint table is the one home of each endpoint: the client's calls, the CLI's
signed-URL list and the admin page's calls agree with it, and an endpoint declared only in a
test is routed, checked, enforced and published like the others."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from purgecache import cli_client
from purgecache.api.endpoints import ENDPOINTS, EndpointTable
from purgecache.client import _calls

from conftest import ADMIN, CLIENTS_TOML
from hawk_signing import HawkAuth
from support.vector_server import VectorServer, start_vector_server

TABLE = EndpointTable(ENDPOINTS)
STATIC = Path(_calls.__file__).resolve().parents[1] / "web" / "static"


def client_calls() -> list[_calls.Call[object]]:
    """One call of every kind the Python client makes."""
    return [
        _calls.ping(),
        _calls.heartbeat(),
        _calls.lbheartbeat(),
        _calls.version(),
        _calls.purge_cache("proj-a/linux", "checkouts"),
        _calls.all_purge_requests("token", 10),
        _calls.purge_requests("proj-a/linux", "2026-01-01T00:00:00.000Z"),
        _calls.create_purge("proj-a/linux", "checkouts", "why", "https://x.example/", True),
        _calls.cancel_purge("proj-a/linux", "checkouts", "wrong pool"),
        _calls.list_purge_history(
            "proj-a/linux",
            cache_name="c",
            client_id="me",
            since="2026-01-01",
            until="2026-02-01",
            continuation_token="t",
            limit=5,
        ),
        _calls.report_worker_sync("proj-a/linux", "local", "host-1", []),
        _calls.create_selector_purge("proj-a/*", "level-3-*", dry_run=True, digest="sha256:0"),
        _calls.cancel_selector_purge("proj-a/*", "level-3-*", "wrong selector"),
        _calls.list_pool_selectors("proj-a/linux", "2026-01-01T00:00:00.000Z"),
        _calls.purge_status("proj-a/linux", "c"),
        _calls.pool_caches("proj-a/linux"),
    ]


def test_every_client_call_reaches_the_endpoint_it_names() -> None:
    """The client's route, method and query keys for each call are the table's, and it has a
    call for every endpoint."""
    for call in client_calls():
        found = TABLE.match(call.route)
        assert found is not None, call.route
        endpoint = found[0][call.method]
        assert endpoint.name == call.endpoint
        assert {key for key, _ in call.query} <= set(endpoint.query_names)
    assert {call.endpoint for call in client_calls()} == {e.name for e in ENDPOINTS}
    experimental = {e.name for e in ENDPOINTS if e.stability == "experimental"}
    assert experimental == _calls.EXTENSIONS


def test_the_cli_signs_urls_for_exactly_the_get_endpoints() -> None:
    """`purgecache signed-url` offers every GET endpoint, by its kebab-case name."""

    def kebab(name: str) -> str:
        return re.sub(r"(?<=[a-z])([A-Z])", r"-\1", name).lower()

    gets = {kebab(e.name) for e in ENDPOINTS if e.method == "GET"}
    assert set(cli_client.SIGNED_URL_ENDPOINTS) == gets


def test_the_admin_page_calls_endpoints_as_the_table_declares_them() -> None:
    """Each function `web/static/api.js` exports is named after an endpoint and sends that
    endpoint's method to a path the table routes to it."""
    source = (STATIC / "api.js").read_text("utf-8")
    pool = quote("proj-a/linux", safe="")
    exported = re.findall(
        r'export function (\w+)\([^)]*\) \{\s*return call\(credentials, "(\w+)", ([^,]+),', source
    )
    assert len(exported) >= 6
    for name, method, path_expression in exported:
        ext = re.fullmatch(r'extPoolPath\("([\w-]+)"', path_expression)
        path = (
            f"purge-cache/{pool}"
            if path_expression.startswith("poolPath")
            else f"ext/{ext[1]}/{pool}"
            if ext
            else path_expression.strip('"')
        )
        found = TABLE.match(path)
        assert found is not None, path
        assert found[0][method].name == name


@pytest.fixture(scope="module", params=["rsgi", "asgi"])
def extended(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VectorServer]:
    """The real app with `support.extra_endpoint_app.ECHO` added to its table."""
    server = start_vector_server(
        tmp_path_factory.mktemp("extended"),
        CLIENTS_TOML,
        "http://127.0.0.1:1",  # only names the schemas' ids here
        interface=request.param,
        factory="support.extra_endpoint_app:app",
    )
    yield server
    server.stop()


def get(server: VectorServer, target: str, auth: tuple[str, str] | None = None) -> httpx.Response:
    client_auth = None if auth is None else HawkAuth(*auth)
    return httpx.get(f"http://127.0.0.1:{server.port}{target}", auth=client_auth)


def test_an_endpoint_declared_only_in_a_test_is_published(extended: VectorServer) -> None:
    """api.json lists the extra endpoint after the standard ones, as experimental, with the
    route, query and scope of its one declaration."""
    reference = get(extended, "/references/purge-cache/v1/api.json").json()
    entries = {entry["name"]: entry for entry in reference["entries"]}
    assert list(entries)[-1] == "echoPool"
    echo = entries["echoPool"]
    assert echo["stability"] == "experimental"
    assert echo["route"] == "/ext/echo/<workerPoolId>"
    assert echo["args"] == ["workerPoolId"]
    assert echo["query"] == ["times"]
    assert echo["scopes"] == "purge-cache:echo::<workerPoolId>"


def test_an_endpoint_declared_only_in_a_test_is_routed_checked_and_enforced(
    extended: VectorServer,
) -> None:
    """Both spellings of a pool reach the handler; scopes, URL parameters and query values are
    checked by the pipeline from the one declaration."""
    base = "/api/purge-cache/v1/ext/echo/"
    assert get(extended, f"{base}a%2Fb?times=2", ADMIN).json() == {"pools": ["a/b", "a/b"]}
    assert get(extended, f"{base}a/b", ADMIN).json() == {"pools": ["a/b"]}
    refused = get(extended, f"{base}a%2Fb")
    assert refused.status_code == 403
    assert "purge-cache:echo::a/b" in refused.json()["message"]
    bad_query = get(extended, f"{base}a%2Fb?times=9", ADMIN)
    assert bad_query.status_code == 400
    assert "times='9': must be 1, 2 or 3" in bad_query.json()["message"]
    unknown = get(extended, f"{base}a%2Fb?since=x", ADMIN)
    assert "Unknown query-string parameter since" in unknown.json()["message"]
    bad_pool = get(extended, f"{base}a%2Fb%2Fc", ADMIN)
    assert bad_pool.status_code == 400
    assert bad_pool.json()["code"] == "InvalidRequestArguments"
    options = httpx.options(f"http://127.0.0.1:{extended.port}{base}a%2Fb")
    assert options.headers["allow"] == "GET, HEAD"
    assert get(extended, "/api/purge-cache/v1/ping").status_code == 200


def test_a_route_is_the_match_with_its_pool_decoded_and_checked_once() -> None:
    """`route` gives `match`'s endpoints with the pool decoded from either spelling (raw for
    ASGI, already decoded for RSGI), the 400 text for a broken pool, the same object for the
    same path again, and keeps a bounded number of paths."""
    table = EndpointTable(ENDPOINTS)
    raw = table.route("purge-cache/proj-a%2Flinux", decoded=False)
    decoded = table.route("purge-cache/proj-a/linux", decoded=True)
    assert raw is not None and decoded is not None
    assert raw.params == decoded.params == {"workerPoolId": "proj-a/linux"}
    assert raw.problem is None and decoded.problem is None
    found = table.match("purge-cache/proj-a%2Flinux")
    assert found is not None and raw.methods is found[0]
    assert table.route("purge-cache/proj-a%2Flinux", decoded=False) is raw
    broken = table.route("purge-cache/a%zz", decoded=False)
    assert broken is not None and broken.params == {"workerPoolId": "a%zz"}
    assert broken.problem == (
        "Invalid URL parameter workerPoolId: 'a%zz' is not properly percent-encoded"
    )
    no_slash = table.route("purge-cache/noslash", decoded=True)
    assert no_slash is not None and no_slash.problem is not None
    assert "does not match the pattern" in no_slash.problem
    assert table.route("nothing-here", decoded=True) is None
    for index in range(5000):
        table.route(f"purge-cache/p/{index}", decoded=True)
    assert len(table._decoded) <= 4096

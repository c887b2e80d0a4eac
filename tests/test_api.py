"""The HTTP API over a real socket: routes of both generations, every error path, headers."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from conftest import ADMIN, LIMITED, READER, LiveServer
from hawk_signing import HawkAuth

FOOTER = "\n\n---\n\n"


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.api, auth=HawkAuth(*ADMIN), timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def anonymous(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.api, timeout=10) as client:
        yield client


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The reply is a Taskcluster error body with this status and code; return it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    body = response.json()
    assert set(body) == {"code", "message", "requestInfo"}
    assert body["code"] == code
    text, footer = body["message"].split(FOOTER)
    assert text
    assert f"* errorCode:  {code}\n* statusCode: {status}\n" in footer
    assert set(body["requestInfo"]) == {"method", "params", "payload", "time"}
    return body


def purge(client: httpx.Client, pool: str, cache: str) -> None:
    response = client.post(f"/purge-cache/{pool.replace('/', '%2F')}", json={"cacheName": cache})
    assert response.status_code == 204, response.text


# ---- monitoring and documents ----------------------------------------------------------


def test_ping_reports_alive_and_uptime(anonymous: httpx.Client) -> None:
    """`ping` answers without credentials with alive and a numeric uptime."""
    body = anonymous.get("/ping").json()
    assert body["alive"] is True
    assert isinstance(body["uptime"], float)


def test_monitoring_endpoints_ignore_garbage_credentials(anonymous: httpx.Client) -> None:
    """Public endpoints never look at the Authorization header."""
    headers = {"Authorization": "Hawk garbage"}
    for path in ("/ping", "/__lbheartbeat__", "/__version__", "/__heartbeat__"):
        assert anonymous.get(path, headers=headers).status_code == 200, path


def test_version_object_has_string_fields(server: LiveServer) -> None:
    """`__version__` (API and root) is the Dockerflow object of four strings."""
    for url in (f"{server.api}/__version__", f"{server.root_url}/__version__"):
        body = httpx.get(url).json()
        assert set(body) == {"source", "version", "commit", "build"}
        assert all(isinstance(value, str) for value in body.values())


def test_root_dockerflow_paths_and_robots(server: LiveServer) -> None:
    """Load balancers find the heartbeats at the root; robots.txt disallows everything."""
    assert httpx.get(f"{server.root_url}/__lbheartbeat__").json() == {}
    assert httpx.get(f"{server.root_url}/__heartbeat__").json() == {}
    robots = httpx.get(f"{server.root_url}/robots.txt")
    assert robots.text == "User-Agent: *\nDisallow: /\n"


def test_api_reference_lists_current_entries(server: LiveServer) -> None:
    """api.json is served in Taskcluster's reference format with the current routes."""
    ref = httpx.get(f"{server.root_url}/references/purge-cache/v1/api.json").json()
    assert ref["serviceName"] == "purge-cache"
    assert ref["apiVersion"] == "v1"
    assert ref["$schema"] == f"{server.root_url}/schemas/common/api-reference-v0.json#"
    entries = {entry["name"]: entry for entry in ref["entries"]}
    stable = [name for name, entry in entries.items() if entry["stability"] == "stable"]
    assert stable == [
        "ping",
        "lbheartbeat",
        "version",
        "purgeCache",
        "allPurgeRequests",
        "purgeRequests",
        "heartbeat",
    ]
    assert list(entries)[: len(stable)] == stable  # extensions come after every v1 entry
    for name in list(entries)[len(stable) :]:
        assert entries[name]["stability"] == "experimental", name
        assert entries[name]["route"].startswith("/ext/"), name
    assert entries["purgeRequests"]["route"] == "/purge-cache/<workerPoolId>"
    assert entries["purgeRequests"]["scopes"] == "purge-cache:purge-requests::<workerPoolId>"
    assert entries["purgeCache"]["input"] == "v1/purge-cache-request.json#"
    assert entries["allPurgeRequests"]["query"] == ["continuationToken", "limit"]


def test_served_schema_is_the_one_bodies_are_checked_against(
    server: LiveServer, admin: httpx.Client
) -> None:
    """The served input schema's cacheName cap is the cap the API enforces."""
    url = f"{server.root_url}/schemas/purge-cache/v1/purge-cache-request.json"
    schema = httpx.get(url).json()
    assert schema["$id"] == url + "#"
    cap = schema["properties"]["cacheName"]["maxLength"]
    ok = admin.post("/purge-cache/schema%2Fcap", json={"cacheName": "x" * cap})
    assert ok.status_code == 204
    too_long = admin.post("/purge-cache/schema%2Fcap", json={"cacheName": "x" * (cap + 1)})
    assert_error(too_long, 400, "InputValidationError")


# ---- both generations ----------------------------------------------------------------


def test_seed_and_current_routes_address_the_same_pool(admin: httpx.Client) -> None:
    """A purge via /a/b is listed via a%2Fb, and the other way round."""
    assert admin.post("/purge-cache/gen-a/linux", json={"cacheName": "seed"}).status_code == 204
    purge(admin, "gen-a/linux", "current")
    for path in ("/purge-cache/gen-a/linux", "/purge-cache/gen-a%2Flinux"):
        names = [entry["cacheName"] for entry in admin.get(path).json()["requests"]]
        assert names == ["current", "seed"], path


def test_a_lowercase_escape_verifies_only_where_the_raw_path_is_seen(
    server: LiveServer, admin: httpx.Client, anonymous: httpx.Client
) -> None:
    """`a%2fb` (no official client sends it) reaches the pool `a/b`; its signature verifies
    under ASGI, which sees the target as sent, and not under RSGI, which rebuilds only the
    `%2F` and literal-slash spellings."""
    purge(admin, "gen-b/linux", "c")
    signed = admin.get("/purge-cache/gen-b%2flinux")
    if "asgi" in server.args:
        assert [entry["cacheName"] for entry in signed.json()["requests"]] == ["c"]
    else:
        assert_error(signed, 401, "AuthenticationFailed")
    assert anonymous.get("/purge-cache/gen-b%2flinux").status_code == 403


def test_entries_have_exactly_the_four_fields(admin: httpx.Client) -> None:
    """Each entry carries provisionerId, workerType, cacheName and a millisecond `before`."""
    purge(admin, "fields-p/fields-w", "c")
    (entry,) = admin.get("/purge-cache/fields-p%2Ffields-w").json()["requests"]
    assert set(entry) == {"provisionerId", "workerType", "cacheName", "before"}
    assert (entry["provisionerId"], entry["workerType"]) == ("fields-p", "fields-w")
    assert len(entry["before"]) == 24 and entry["before"].endswith("Z")


def test_purge_requests_sorted_by_cache_name(admin: httpx.Client) -> None:
    """purgeRequests lists a pool's caches in code-point order of their names."""
    for name in ("b", "A", "a", "_", "B"):
        purge(admin, "sort/pool", name)
    names = [e["cacheName"] for e in admin.get("/purge-cache/sort/pool").json()["requests"]]
    assert names == sorted(names) == ["A", "B", "_", "a", "b"]


def test_repurge_moves_before_and_keeps_one_row(admin: httpx.Client) -> None:
    """Purging again 30 ms later gives a strictly later `before` and no second entry."""
    purge(admin, "again/pool", "c")
    first = admin.get("/purge-cache/again/pool").json()["requests"]
    time.sleep(0.03)
    purge(admin, "again/pool", "c")
    second = admin.get("/purge-cache/again/pool").json()["requests"]
    assert len(first) == len(second) == 1
    assert second[0]["before"] > first[0]["before"]


def test_own_purge_is_visible_at_once_despite_cache(admin: httpx.Client) -> None:
    """The per-pool cache (300 s here) never hides a purge this process accepted."""
    assert admin.get("/purge-cache/fresh/pool").json() == {"requests": []}
    purge(admin, "fresh/pool", "c")
    assert len(admin.get("/purge-cache/fresh/pool").json()["requests"]) == 1


def test_unknown_pool_gives_empty_list(admin: httpx.Client) -> None:
    """A pool nobody purged answers an empty list, never 404."""
    assert admin.get("/purge-cache/nobody/here").json() == {"requests": []}


def test_thirty_eight_character_ids_are_valid(admin: httpx.Client) -> None:
    """Identifiers of 38 characters are accepted on both halves."""
    pool = f"{'p' * 38}/{'w' * 38}"
    purge(admin, pool, "long")
    assert len(admin.get(f"/purge-cache/{pool}").json()["requests"]) == 1


def test_cache_names_may_hold_any_character_but_nul(admin: httpx.Client) -> None:
    """Empty, `*`, `/`, `:` and non-ASCII cache names round-trip unchanged."""
    names = ["", "*", "a/b", "x:y", "caché-ü"]
    for name in names:
        purge(admin, "chars/pool", name)
    listed = [e["cacheName"] for e in admin.get("/purge-cache/chars/pool").json()["requests"]]
    assert listed == sorted(names)


# ---- since ---------------------------------------------------------------------------------


def test_since_is_inclusive_and_defaults_to_everything(admin: httpx.Client) -> None:
    """`before` fed back verbatim as `since` still includes that entry; later ones only."""
    purge(admin, "since/pool", "first")
    time.sleep(0.03)
    purge(admin, "since/pool", "second")
    entries = admin.get("/purge-cache/since/pool").json()["requests"]
    befores = {e["cacheName"]: e["before"] for e in entries}
    assert len(entries) == 2
    got = admin.get("/purge-cache/since/pool", params={"since": befores["first"]}).json()
    assert len(got["requests"]) == 2
    got = admin.get("/purge-cache/since/pool", params={"since": befores["second"]}).json()
    assert [e["cacheName"] for e in got["requests"]] == ["second"]
    future = "2999-01-01T00:00:00.000Z"
    assert admin.get("/purge-cache/since/pool", params={"since": future}).json()["requests"] == []


@pytest.mark.parametrize(
    "since",
    [
        "2019-10-07T15:46:01.123Z",
        "2019-10-07T15:46:01Z",
        "2019-10-07T15:46:01+02:00",
        "2019-10-07T15:46:01.123456789Z",
        "2019-10-07",
        "Mon Oct 07 2019 15:46:01 GMT+0000 (Coordinated Universal Time)",
        "Mon, 07 Oct 2019 15:46:01 GMT",
    ],
)
def test_since_accepts_the_forms_clients_send(admin: httpx.Client, since: str) -> None:
    """Every `since` form seen from real clients and upstream tests is accepted."""
    purge(admin, "since-forms/pool", "c")
    response = admin.get("/purge-cache/since-forms/pool", params={"since": since})
    assert response.status_code == 200
    assert len(response.json()["requests"]) == 1


@pytest.mark.parametrize("since", ["abc", "now", "2019-13-01", "", "1970-01-01T00:00:00.000Z"])
def test_since_rejects_what_javascript_rejects(admin: httpx.Client, since: str) -> None:
    """Unparsable `since` values and the epoch itself are 400 InvalidRequestArguments."""
    response = admin.get("/purge-cache/since-bad/pool", params={"since": since})
    assert_error(response, 400, "InvalidRequestArguments")


# ---- listing and pagination ----------------------------------------------------------


def test_pagination_pages_of_10_10_5_and_no_token_at_the_end(
    backend_server_factory: Callable[..., LiveServer],
) -> None:
    """25 requests with limit=10 come back as 10, 10, 5; the last page has no token key."""
    live = backend_server_factory()
    with httpx.Client(base_url=live.api, auth=HawkAuth(*ADMIN)) as client:
        for index in range(25):
            purge(client, f"page/p{index // 10}", f"cache-{index:02d}")
        sizes, seen, token = [], [], None
        while True:
            params = {"limit": "10", **({"continuationToken": token} if token else {})}
            body = client.get("/purge-cache/list", params=params).json()
            sizes.append(len(body["requests"]))
            seen += [(e["workerType"], e["cacheName"]) for e in body["requests"]]
            if "continuationToken" not in body:
                break
            token = body["continuationToken"]
            assert isinstance(token, str) and token
        assert sizes == [10, 10, 5]
        assert seen == sorted(seen) and len(set(seen)) == 25


def test_pagination_neither_skips_nor_repeats_when_rows_arrive(
    backend_server_factory: Callable[..., LiveServer],
) -> None:
    """Rows added between pages (before and after the cursor) never cause skips or repeats."""
    live = backend_server_factory()
    with httpx.Client(base_url=live.api, auth=HawkAuth(*ADMIN)) as client:
        for index in range(10):
            purge(client, "keyset/pool", f"m{index}")
        first = client.get("/purge-cache/list", params={"limit": "5"}).json()
        purge(client, "keyset/pool", "a-before-cursor")
        purge(client, "keyset/pool", "z-after-cursor")
        rest = client.get(
            "/purge-cache/list",
            params={"limit": "100", "continuationToken": first["continuationToken"]},
        ).json()
        names = [e["cacheName"] for e in first["requests"] + rest["requests"]]
        assert names == [f"m{i}" for i in range(10)] + ["z-after-cursor"]


def test_listing_limit_capped_and_validated(admin: httpx.Client) -> None:
    """limit above 1000 is capped; 0, negative and non-numbers are 400."""
    assert admin.get("/purge-cache/list", params={"limit": "100000"}).status_code == 200
    for bad in ("0", "-1", "abc", "", "1.5"):
        response = admin.get("/purge-cache/list", params={"limit": bad})
        assert_error(response, 400, "InvalidRequestArguments")


@pytest.mark.parametrize("token", ["this-is-rubbish", "!!!", "W10", "WyJhIiwiYiJd"])
def test_malformed_continuation_token_is_input_error(admin: httpx.Client, token: str) -> None:
    """A token this service did not hand out is 400 InputError, never a 500 or a restart."""
    response = admin.get("/purge-cache/list", params={"continuationToken": token})
    assert_error(response, 400, "InputError")


# ---- authentication and scopes ---------------------------------------------------------


def test_reads_need_scopes_with_the_double_colon(server: LiveServer) -> None:
    """Anonymous callers get 403 without the read scope; the anonymous role can grant it."""
    with httpx.Client(base_url=server.api) as client:
        body = assert_error(client.get("/purge-cache/proj/linux"), 403, "InsufficientScopes")
        assert "purge-cache:purge-requests::proj/linux" in str(body["message"])
        assert client.get("/purge-cache/public/linux").status_code == 200
        assert_error(client.get("/purge-cache/list"), 403, "InsufficientScopes")


def test_forbidden_before_validation_on_reads(anonymous: httpx.Client) -> None:
    """Read endpoints check scopes before a nonsense pool id or query is reported."""
    assert_error(anonymous.get("/purge-cache/bad!/x?since=abc"), 403, "InsufficientScopes")
    assert_error(anonymous.get("/purge-cache/list?since=x"), 403, "InsufficientScopes")


def test_bad_credentials_are_401_even_where_anonymous_would_do(server: LiveServer) -> None:
    """Invalid credentials never fall back to the anonymous scopes."""
    with httpx.Client(base_url=server.api, auth=HawkAuth("admin", "wrong")) as client:
        response = client.get("/purge-cache/public/linux")
        body = assert_error(response, 401, "AuthenticationFailed")
        assert response.headers["www-authenticate"] == "hawk"
        assert str(body["message"]).startswith("Unauthorized: Bad mac")
    with httpx.Client(base_url=server.api, auth=HawkAuth("nobody", "x")) as client:
        body = assert_error(client.get("/purge-cache/list"), 401, "AuthenticationFailed")
        assert str(body["message"]).startswith("Client with clientId 'nobody' not found")


def test_purge_scope_is_per_pool_and_cache(server: LiveServer) -> None:
    """A client may purge exactly the caches its scopes name; otherwise 403 naming the scope."""
    with httpx.Client(base_url=server.api, auth=HawkAuth(*LIMITED)) as client:
        ok = client.post("/purge-cache/proj-a%2Flinux", json={"cacheName": "cache-1"})
        assert ok.status_code == 204
        denied = client.post("/purge-cache/proj-a%2Flinux", json={"cacheName": "cache-2"})
        body = assert_error(denied, 403, "InsufficientScopes")
        assert "Client ID limited does not have sufficient scopes" in str(body["message"])
        assert "purge-cache:proj-a/linux:cache-2" in str(body["message"])
        assert body["requestInfo"]["payload"] == {"cacheName": "cache-2"}


def test_reader_can_list_but_not_purge(server: LiveServer) -> None:
    """Read scopes do not allow writes."""
    with httpx.Client(base_url=server.api, auth=HawkAuth(*READER)) as client:
        assert client.get("/purge-cache/list").status_code == 200
        denied = client.post("/purge-cache/r/w", json={"cacheName": "c"})
        assert_error(denied, 403, "InsufficientScopes")


def test_no_anonymous_writes(anonymous: httpx.Client) -> None:
    """A purge without credentials is refused with 403."""
    response = anonymous.post("/purge-cache/public/linux", json={"cacheName": "c"})
    assert_error(response, 403, "InsufficientScopes")


def test_request_without_payload_hash_is_accepted(server: LiveServer) -> None:
    """Hawk headers without `hash` (as the npm and Go clients send) are accepted."""
    import mohawk
    from mohawk.base import EmptyValue

    url = f"{server.api}/purge-cache/nohash/pool"
    body = b'{"cacheName":"c"}'
    sender = mohawk.Sender(
        {"id": ADMIN[0], "key": ADMIN[1], "algorithm": "sha256"},
        url,
        "POST",
        always_hash_content=False,
        content=EmptyValue,
        content_type=EmptyValue,
    )
    headers = {"Authorization": sender.request_header, "Content-Type": "application/json"}
    assert "hash=" not in sender.request_header
    assert httpx.post(url, content=body, headers=headers).status_code == 204


def test_tampered_payload_fails_the_hash_check(server: LiveServer) -> None:
    """A body changed after signing is 401 with the payload-hash message."""
    import mohawk

    url = f"{server.api}/purge-cache/tamper/pool"
    sender = mohawk.Sender(
        {"id": ADMIN[0], "key": ADMIN[1], "algorithm": "sha256"},
        url,
        "POST",
        content='{"cacheName":"a"}',
        content_type="application/json",
    )
    headers = {"Authorization": sender.request_header, "Content-Type": "application/json"}
    response = httpx.post(url, content=b'{"cacheName":"b"}', headers=headers)
    body = assert_error(response, 401, "AuthenticationFailed")
    assert "Computed payload hash" in str(body["message"])


# ---- purgeCache validation --------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type", "code"),
    [
        (b"{not json", "application/json", "MalformedPayload"),
        (b"123", "application/json", "MalformedPayload"),
        (b'"x"', "application/json", "MalformedPayload"),
        (b'{"cacheName":"x"}', "text/plain", "MalformedPayload"),
        (b'{"cacheName":"x"}', None, "MalformedPayload"),
        (b"{}", "application/json", "InputValidationError"),
        (b"", "application/json", "InputValidationError"),
        (b'{"cacheName":"x","extra":1}', "application/json", "InputValidationError"),
        (b'{"cacheName":5}', "application/json", "InputValidationError"),
        (b'["cacheName"]', "application/json", "InputValidationError"),
        (b'{"cacheName":"a\\u0000b"}', "application/json", "InputValidationError"),
    ],
)
def test_bad_purge_bodies_are_400_even_without_credentials(
    server: LiveServer, content: bytes, content_type: str | None, code: str
) -> None:
    """Body problems are reported before authentication, with the right code."""
    headers = {"Content-Type": content_type} if content_type else {}
    response = httpx.post(f"{server.api}/purge-cache/body/pool", content=content, headers=headers)
    assert_error(response, 400, code)


@pytest.mark.parametrize(
    "path",
    [
        "/purge-cache/a/b/",
        "/purge-cache/a//b",
        "/purge-cache/a/b/c",
        "/purge-cache/list",
        "/purge-cache/",
        "/purge-cache/a%252Fb",
        "/purge-cache/a%ZZ/b",
        f"/purge-cache/{'p' * 39}/w",
        "/purge-cache/a/b%0A",
    ],
)
def test_invalid_pool_ids_are_400(admin: httpx.Client, path: str) -> None:
    """Malformed worker pool ids are 400 InvalidRequestArguments, never 404 or 500."""
    response = admin.post(path, json={"cacheName": "c"})
    assert_error(response, 400, "InvalidRequestArguments")


def test_purge_rejects_query_parameters(admin: httpx.Client) -> None:
    """purgeCache accepts no query keys (bewit aside)."""
    response = admin.post("/purge-cache/q/pool?x=1", json={"cacheName": "c"})
    assert_error(response, 400, "InvalidRequestArguments")


def test_unknown_and_repeated_query_keys_are_400(admin: httpx.Client) -> None:
    """Unknown and repeated query keys are rejected on read endpoints."""
    assert_error(admin.get("/purge-cache/q/pool?foo=1"), 400, "InvalidRequestArguments")
    response = admin.get("/purge-cache/q/pool?since=2020-01-01&since=2020-01-02")
    assert_error(response, 400, "InvalidRequestArguments")
    assert_error(admin.get("/purge-cache/list?since=2020-01-01"), 400, "InvalidRequestArguments")


def test_oversize_body_is_413(server: LiveServer) -> None:
    """Bodies over the documented 64 KiB limit get 413 InputTooLarge."""
    body = json.dumps({"cacheName": "x" * (70 * 1024)})
    response = httpx.post(
        f"{server.api}/purge-cache/big/pool",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 413, "InputTooLarge")


def test_gzip_encoded_request_body_is_inflated(server: LiveServer) -> None:
    """A gzip Content-Encoding request body is accepted like a plain one."""
    import mohawk
    from mohawk.base import EmptyValue

    url = f"{server.api}/purge-cache/gz/pool"
    sender = mohawk.Sender(
        {"id": ADMIN[0], "key": ADMIN[1], "algorithm": "sha256"},
        url,
        "POST",
        always_hash_content=False,
        content=EmptyValue,
        content_type=EmptyValue,
    )
    headers = {
        "Authorization": sender.request_header,
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    response = httpx.post(url, content=gzip.compress(b'{"cacheName":"gz"}'), headers=headers)
    assert response.status_code == 204, response.text
    with httpx.Client(auth=HawkAuth(*ADMIN)) as client:
        listed = client.get(url).json()["requests"]
    assert [entry["cacheName"] for entry in listed] == ["gz"]


# ---- routing and headers ----------------------------------------------------------------


def test_unknown_paths_and_methods_are_plain_404(server: LiveServer) -> None:
    """Unknown routes and wrong methods get 404 {"error": "Not found"} with API headers."""
    for method, path in [
        ("GET", "/nope"),
        ("DELETE", "/ping"),
        ("PUT", "/purge-cache/a/b"),
        ("GET", "/Purge-Cache/a/b"),
        ("GET", "/purge-cache"),
    ]:
        response = httpx.request(method, f"{server.api}{path}")
        assert response.status_code == 404, (method, path)
        assert response.json() == {"error": "Not found"}
        assert response.headers["cache-control"] == "no-store no-cache must-revalidate"
    assert httpx.get(f"{server.root_url}/elsewhere").status_code == 404


def test_options_preflight_succeeds_with_cors(server: LiveServer) -> None:
    """Browser pre-flights get 200, Allow and the CORS headers, without credentials."""
    response = httpx.request("OPTIONS", f"{server.api}/purge-cache/a/b")
    assert response.status_code == 200
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    assert response.headers["access-control-allow-origin"] == "*"
    assert "Authorization" in response.headers["access-control-allow-headers"]


def test_head_runs_the_get_endpoint_without_body(server: LiveServer) -> None:
    """HEAD answers like GET (including scope checks) with no body."""
    assert httpx.head(f"{server.api}/ping").status_code == 200
    response = httpx.head(f"{server.api}/purge-cache/secret/pool")
    assert response.status_code == 403
    assert response.content == b""


def test_request_and_trace_ids_are_sent(server: LiveServer) -> None:
    """Every reply has a fresh request id; a caller's trace id is echoed."""
    response = httpx.get(f"{server.api}/ping", headers={"X-Taskcluster-Trace-Id": "trace-1"})
    assert response.headers["x-for-trace-id"] == "trace-1"
    assert len(response.headers["x-for-request-id"]) == 36
    assert response.headers["x-content-type-options"] == "nosniff"


def test_gzip_replies_when_asked(admin: httpx.Client) -> None:
    """Large replies are gzip-compressed for clients that accept it, plain otherwise."""
    for index in range(40):
        purge(admin, "gzip/pool", f"cache-with-a-long-name-{index:03d}")
    raw = admin.get("/purge-cache/gzip/pool", headers={"Accept-Encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip"
    assert len(raw.json()["requests"]) == 40
    plain = admin.get("/purge-cache/gzip/pool", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    refused = admin.get("/purge-cache/gzip/pool", headers={"Accept-Encoding": "gzip;q=0, br"})
    assert "content-encoding" not in refused.headers
    # The fast path (a plain GET) and the general one (a GET with an empty body) compress
    # alike, and a repeated answer (kept compressed) is the same answer.
    hot = [admin.get("/purge-cache/gzip/pool", headers={"Accept-Encoding": "GZIP"}) for _ in "ab"]
    general = admin.get(
        "/purge-cache/gzip/pool", headers={"Accept-Encoding": "gzip", "Content-Length": "0"}
    )
    for answer in (*hot, general):
        assert answer.headers["content-encoding"] == "gzip"
        assert answer.headers["vary"] == "Accept-Encoding"
        assert answer.json() == plain.json()
    assert hot[0].headers["content-length"] == general.headers["content-length"]


def fast_answers(server: LiveServer, endpoint: str) -> float:
    """The server's `purgecache_fast_path_answers_total` for an endpoint (0 before any)."""
    text = httpx.get(f"{server.root_url}/metrics").text
    label = f'purgecache_fast_path_answers_total{{endpoint="{endpoint}"}} '
    lines = [line for line in text.splitlines() if line.startswith(label)]
    return float(lines[0][len(label) :]) if lines else 0.0


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/purge-cache/same%2Fanswer", "purgeRequests"),
        ("/purge-cache/same/answer", "purgeRequests"),
        ("/purge-cache/same%2Fanswer?since=2000-01-01T00%3A00%3A00.000Z", "purgeRequests"),
        ("/ping", "ping"),
    ],
)
def test_fast_and_general_paths_answer_alike(
    server: LiveServer, admin: httpx.Client, path: str, endpoint: str
) -> None:
    """A plain GET of purgeRequests or ping takes the fast path (the counter says so); the same
    GET carrying an empty body takes the general one. Callers cannot tell which answered."""
    purge(admin, "same/answer", "cache-b")
    purge(admin, "same/answer", "cache-a")
    trace = {"X-Taskcluster-Trace-Id": "trace-alike"}
    before = fast_answers(server, endpoint)
    fast = admin.get(path, headers=trace)
    assert fast_answers(server, endpoint) == before + 1
    general = admin.get(path, headers={**trace, "Content-Length": "0"})
    assert fast_answers(server, endpoint) == before + 1
    assert fast.status_code == general.status_code == 200
    varying = {"x-for-request-id", "date", "content-length"}
    assert {k: v for k, v in fast.headers.items() if k not in varying} == {
        k: v for k, v in general.headers.items() if k not in varying
    }
    assert fast.headers["x-for-request-id"] != general.headers["x-for-request-id"]
    if path == "/ping":
        assert fast.json().keys() == general.json().keys() == {"alive", "uptime"}
    else:
        assert fast.content == general.content
        assert [r["cacheName"] for r in fast.json()["requests"]] == ["cache-a", "cache-b"]


def test_fast_and_general_purges_answer_alike(server: LiveServer, admin: httpx.Client) -> None:
    """A plain signed purge takes the fast path (the counter says so); with
    `Content-Encoding: identity` it takes the general one. Both store the purge and answer the
    same 204."""
    url = "/purge-cache/same%2Fpurge"
    trace = {"X-Taskcluster-Trace-Id": "trace-alike"}
    before = fast_answers(server, "purgeCache")
    fast = admin.post(url, json={"cacheName": "fast"}, headers=trace)
    assert fast_answers(server, "purgeCache") == before + 1
    general = admin.post(
        url, json={"cacheName": "general"}, headers={**trace, "Content-Encoding": "identity"}
    )
    assert fast_answers(server, "purgeCache") == before + 1
    assert fast.status_code == general.status_code == 204
    assert fast.content == general.content == b""
    varying = {"x-for-request-id", "date"}
    assert {k: v for k, v in fast.headers.items() if k not in varying} == {
        k: v for k, v in general.headers.items() if k not in varying
    }
    stored = admin.get("/purge-cache/same%2Fpurge").json()["requests"]
    assert [r["cacheName"] for r in stored] == ["fast", "general"]


def test_a_signed_purge_with_a_bad_body_still_gets_the_schema_error(admin: httpx.Client) -> None:
    """The hot path reads the body, gives up on it, and the general path explains it."""
    response = admin.post("/purge-cache/bad%2Fbody", json={"cacheName": 5, "extra": True})
    body = assert_error(response, 400, "InputValidationError")
    assert "must match the schema" in str(body["message"])
    assert body["requestInfo"]["payload"] == {"cacheName": 5, "extra": True}

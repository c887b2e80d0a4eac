"""Provenance and history over HTTP (issue 13, items 1 and 2): every accepted purge, through v1
`purgeCache` or the `createPurge` extension, is an event of `listPurgeHistory` with who asked,
from where, how they signed and why; both backends, both server interfaces."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from purgecache.api.endpoints import ENDPOINTS
from test_api import assert_error
from test_serve import run_cli

from conftest import ADMIN, CLIENTS_TOML, LIMITED, READER, LiveServer, db_args, start_server
from hawk_signing import HawkAuth
from support.sqlite_files import sqlite_file

HISTORIAN = ("historian", "historian-token-0123456789")
CLIENTS = (
    CLIENTS_TOML
    + f"""
[[clients]]
client_id = "{HISTORIAN[0]}"
access_token = "{HISTORIAN[1]}"
scopes = ["purge-cache:history::hist-a/*"]
"""
)
AGENT = "history-test/1.0"


@pytest.fixture(
    scope="module",
    params=[("sqlite", "rsgi"), ("postgres", "rsgi"), ("sqlite", "asgi")],
    ids=["sqlite", "postgres", "sqlite-asgi"],
)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A server per backend (and ASGI once) whose clients file adds a history reader."""
    backend, interface = request.param
    data: Path = tmp_path_factory.mktemp("history")
    (data / "test-clients.toml").write_text(CLIENTS)
    server = start_server(data, *db_args(backend), "--interface", interface)
    yield server
    server.stop()


def client(live: LiveServer, credentials: tuple[str, str] | None = ADMIN) -> httpx.Client:
    auth = None if credentials is None else HawkAuth(*credentials)
    headers = {"user-agent": AGENT}
    return httpx.Client(base_url=live.api, auth=auth, headers=headers, timeout=10)


def history(live: LiveServer, **query: str) -> dict[str, Any]:
    with client(live) as admin:
        response = admin.get("/ext/history", params=query)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_v1_purge_records_who_from_where_and_which_spelling_was_signed(
    live: LiveServer,
) -> None:
    """`purgeCache` answers 204 as ever and adds an event naming the client, its address, its
    User-Agent and the pool spelling its signature covered: `%2F` or the seed era's slash."""
    with client(live) as admin:
        assert admin.post("/purge-cache/v1-a%2Flinux", json={"cacheName": "c"}).status_code == 204
        seed = admin.post("/purge-cache/v1-a/linux", json={"cacheName": "c"})
        assert (seed.status_code, seed.content) == (204, b"")
    events = history(live, workerPoolId="v1-a/linux")["events"]
    assert [e["signedSpelling"] for e in events] == ["slash", "%2F"]  # newest first
    for event in events:
        assert set(event) - {"ended", "endReason"} == {
            "eventId",
            "workerPoolId",
            "cacheName",
            "time",
            "endpoint",
            "clientId",
            "sourceIp",
            "signedSpelling",
            "userAgent",
            "untilApplied",
        }
        assert (event["endpoint"], event["untilApplied"]) == ("purgeCache", False)
        assert (event["clientId"], event["sourceIp"]) == ("admin", "127.0.0.1")
        assert event["userAgent"] == AGENT
    assert "ended" not in events[0]  # still open; the second purge ended the first:
    assert (events[1]["endReason"], events[1]["ended"]) == ("superseded", events[0]["time"])
    assert events[0]["time"] >= events[1]["time"]
    assert int(events[0]["eventId"]) > int(events[1]["eventId"])


def test_create_purge_keeps_the_reason_and_link(live: LiveServer) -> None:
    """`createPurge` purges like v1 (workers see it) and answers the event it recorded."""
    body = {"cacheName": "ck", "reason": 'corrupt ✓ "quoted"', "link": "https://bugs.example/1"}
    with client(live) as admin:
        made = admin.post("/ext/purge/ext-a%2Flinux", json=body)
        assert made.status_code == 200, made.text
        listed = admin.get("/purge-cache/ext-a%2Flinux").json()["requests"]
    answer = made.json()
    assert {k: answer[k] for k in ("workerPoolId", "cacheName", "reason", "link")} == {
        "workerPoolId": "ext-a/linux",
        **body,
    }
    assert answer["endpoint"] == "createPurge" and "eventId" not in answer
    assert [(e["cacheName"], e["before"]) for e in listed] == [("ck", answer["time"])]
    (event,) = history(live, workerPoolId="ext-a/linux")["events"]
    assert event == {**answer, "eventId": event["eventId"]}


def test_create_purge_records_whether_it_is_kept_until_applied(live: LiveServer) -> None:
    """`createPurge` answers and records the policy it was made with: `untilApplied: true`
    as asked, the service's default (here the normal policy) without one, and false."""
    with client(live) as admin:
        for policy in ({"untilApplied": True}, {}, {"untilApplied": False}):
            made = admin.post("/ext/purge/ua-a%2Flinux", json={"cacheName": "c", **policy})
            assert made.status_code == 200, made.text
            assert made.json()["untilApplied"] is policy.get("untilApplied", False)
    events = history(live, workerPoolId="ua-a/linux")["events"]
    assert [e["untilApplied"] for e in events] == [False, False, True]  # newest first


@pytest.mark.parametrize(
    "body",
    [
        {"cacheName": "c", "reason": "x" * 1001},
        {"cacheName": "c", "reason": "nul \x00 inside"},
        {"cacheName": "c", "link": "ftp://files.example/x"},
        {"cacheName": "c", "link": "javascript:alert(1)"},
        {"cacheName": "c", "link": "/relative/path"},
        {"cacheName": "c", "link": "https://spaces in.example/"},
        {"cacheName": "c", "link": "https://x.example/" + "a" * 2031},
        {"cacheName": "c", "reason": 5},
        {"cacheName": "c", "extra": "key"},
        {"reason": "no cache name"},
    ],
    ids=lambda body: "-".join(sorted(body))[:20],
)
def test_create_purge_refuses_a_bad_reason_or_link_and_stores_nothing(
    live: LiveServer, body: dict[str, object]
) -> None:
    """Each malformed body is a 400 InputValidationError, and no purge is stored."""
    with client(live) as admin:
        refused = admin.post("/ext/purge/bad-a%2Flinux", json=body)
        assert_error(refused, 400, "InputValidationError")
        assert admin.get("/purge-cache/bad-a%2Flinux").json() == {"requests": []}


def test_create_purge_accepts_the_longest_reason_and_link(live: LiveServer) -> None:
    """1,000 characters of reason and 2,048 of link are accepted."""
    link = "https://x.example/" + "a" * (2048 - len("https://x.example/"))
    with client(live) as admin:
        made = admin.post(
            "/ext/purge/long-a%2Flinux", json={"cacheName": "c", "reason": "r" * 1000, "link": link}
        )
    assert made.status_code == 200, made.text


def test_create_purge_needs_the_v1_purge_scope(live: LiveServer) -> None:
    """A client holding `purge-cache:proj-a/linux:cache-1` may purge that cache only."""
    with client(live, LIMITED) as limited:
        ok = limited.post("/ext/purge/proj-a%2Flinux", json={"cacheName": "cache-1"})
        assert ok.status_code == 200, ok.text
        refused = limited.post("/ext/purge/proj-a%2Flinux", json={"cacheName": "cache-2"})
    body = assert_error(refused, 403, "InsufficientScopes")
    assert "purge-cache:proj-a/linux:cache-2" in body["message"]


def test_history_filters_pages_and_counts(live: LiveServer) -> None:
    """Filters combine; pages come newest first, each with the filter's total; the last page
    has no token; a token from elsewhere is a 400."""
    with client(live) as admin:
        for index in range(5):
            cache = "even" if index % 2 == 0 else "odd"
            admin.post("/purge-cache/page-a%2Flinux", json={"cacheName": cache})
        seen, token, totals = [], None, set()
        while True:
            query = {"workerPoolId": "page-a/linux", "limit": "2"}
            page = admin.get(
                "/ext/history", params={**query, **({"continuationToken": token} if token else {})}
            ).json()
            seen += page["events"]
            totals.add(page["total"])
            token = page.get("continuationToken")
            if token is None:
                break
        assert totals == {5} and len(seen) == 5
        assert len({e["eventId"] for e in seen}) == 5
        times = [(e["time"], int(e["eventId"])) for e in seen]
        assert times == sorted(times, reverse=True)
        odd = history(live, workerPoolId="page-a/linux", cacheName="odd", clientId="admin")
        assert odd["total"] == 2 and {e["cacheName"] for e in odd["events"]} == {"odd"}
        future = history(live, workerPoolId="page-a/linux", since="2999-01-01T00:00:00Z")
        assert future == {"events": [], "total": 0}
        past = history(live, workerPoolId="page-a/linux", until="2000-01-01")
        assert past["total"] == 0
        assert history(live, clientId="nobody") == {"events": [], "total": 0}
        bad_token = admin.get("/ext/history", params={"continuationToken": "bm9wZQ"})
        assert_error(bad_token, 400, "InputError")
        bad_pool = admin.get("/ext/history", params={"workerPoolId": "not-a-pool"})
        assert_error(bad_pool, 400, "InvalidRequestArguments")
        bad_time = admin.get("/ext/history", params={"since": "yesterday-ish"})
        assert_error(bad_time, 400, "InvalidRequestArguments")


def test_history_needs_the_pool_history_scope_and_star_across_pools(live: LiveServer) -> None:
    """`purge-cache:history::<pool>` reads a pool's events; across pools takes
    `purge-cache:history::*`; readers of purge requests are refused."""
    with client(live, HISTORIAN) as historian:
        assert (
            historian.get("/ext/history", params={"workerPoolId": "hist-a/linux"}).status_code
            == 200
        )
        across = historian.get("/ext/history")
        other = historian.get("/ext/history", params={"workerPoolId": "hist-b/linux"})
    assert "purge-cache:history::*" in assert_error(across, 403, "InsufficientScopes")["message"]
    assert (
        "purge-cache:history::hist-b/linux"
        in assert_error(other, 403, "InsufficientScopes")["message"]
    )
    for credentials in (READER, None):
        with client(live, credentials) as reader:
            assert_error(reader.get("/ext/history"), 403, "InsufficientScopes")


def test_extensions_are_published_as_experimental_with_their_schemas(live: LiveServer) -> None:
    """api.json lists the extensions after every v1 entry, experimental, under /ext/; their
    schemas are served."""
    reference = httpx.get(f"{live.root_url}/references/purge-cache/v1/api.json").json()
    entries = {entry["name"]: entry for entry in reference["entries"]}
    extensions = [e.name for e in ENDPOINTS if e.stability == "experimental"]
    assert {"createPurge", "listPurgeHistory", "reportWorkerSync"} <= set(extensions)
    assert list(entries)[-len(extensions) :] == extensions
    for name in extensions:
        assert entries[name]["stability"] == "experimental"
        assert entries[name]["route"].startswith("/ext/")
        for key in ("input", "output"):
            if key in entries[name]:
                path = entries[name][key].removesuffix("#")
                schema = httpx.get(f"{live.root_url}/schemas/purge-cache/{path}")
                assert schema.status_code == 200, path
    assert entries["listPurgeHistory"]["scopes"] == "purge-cache:history::<workerPoolId>"
    assert entries["createPurge"]["scopes"] == "purge-cache:<workerPoolId>:<cacheName>"


def test_expire_prunes_history_past_its_retention_and_keeps_requests(
    server_factory: Callable[..., LiveServer], tmp_path: Path
) -> None:
    """`purgecache expire --history-retention` deletes older events, keeps the open request
    (its own retention is apart) and says how many events went."""
    data = tmp_path / "d"
    live = server_factory(data_dir=data)
    with client(live) as admin:
        assert admin.post("/purge-cache/prune%2Fpool", json={"cacheName": "c"}).status_code == 204
    live.stop()
    time.sleep(0.01)
    kept = run_cli("expire", "--data-dir", str(data))
    assert "0 history event(s)" in kept.stdout, kept.stderr
    pruned = run_cli("expire", "--data-dir", str(data), "--history-retention", "5ms")
    assert pruned.returncode == 0, pruned.stderr
    assert "expired 0 purge request(s), 1 history event(s)" in pruned.stdout
    with sqlite_file(data / "purgecache.db") as db:
        assert db.execute("SELECT count(*) FROM purge_history").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM cache_purges").fetchone() == (1,)
    db.close()

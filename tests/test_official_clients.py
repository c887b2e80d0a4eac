"""Wire compatibility with the OFFICIAL Taskcluster clients, run as black boxes.

Each client lives in its own environment, made by `scripts/setup-client-envs.sh` (CI runs it
before the tests; locally run it once):

- `tc19`:  Python `taskcluster==19.0.0`, the seed-era API (`provisionerId`, `workerType`;
  literal `/` in URLs), run on Python 3.11 with `base64.encodestring` aliased;
- `tc113`: Python `taskcluster==113.2.0`, the current API (`workerPoolId`, sent as `a%2Fb`);
- `npm`:   JavaScript `taskcluster-client@87.1.3` (Hawk without a payload hash).

The scripts in `tests/clients/` drive a client and print what it returned as JSON; the
assertions are here. Every test starts its own server with an empty database
(`server_factory`). The scenario is upstream's "Publish purge-cache requests" (spec §13.1),
plus the authentication, scope and pagination behaviour clients depend on (spec §12).

The environments are looked for in `.ci-work/clients` (or `$PURGECACHE_CLIENT_ENVS`). The
tests skip only when that folder does not exist, and only outside CI (`CI=true` makes it an
error); a folder that exists but whose environments lack their `.ready` marker is a failure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from purgecache.api.endpoints import ENDPOINTS

from conftest import ADMIN, LIMITED, READER, LiveServer

REPO = Path(__file__).resolve().parents[1]
CLIENT_SCRIPTS = Path(__file__).resolve().parent / "clients"
CLIENT_ENVS = Path(
    os.environ.get("PURGECACHE_CLIENT_ENVS", REPO / ".ci-work" / "clients")
).resolve()
SETUP_HINT = "run scripts/setup-client-envs.sh"

POOL_1 = "dummy-provisioner-extended-extended/dummy-worker-extended-extended"
POOL_2 = "dummy-provisioner-extended-extended-2/dummy-worker-extended-extended"
POOL_3 = "dummy-provisioner-extended-extended/dummy-worker-extended-extended-2"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")

Json = Any
ServerFactory = Callable[..., LiveServer]

if not CLIENT_ENVS.is_dir():
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"official client environments missing in CI: {CLIENT_ENVS}")
    pytest.skip(
        f"official Taskcluster client environments not set up ({CLIENT_ENVS} does not "
        f"exist): {SETUP_HINT}",
        allow_module_level=True,
    )


def env_dir(name: str) -> Path:
    """The environment `name`, failing the test if setup did not finish it."""
    path = CLIENT_ENVS / name
    if not (path / ".ready").is_file():
        pytest.fail(f"client environment {path} is incomplete (no .ready marker): {SETUP_HINT}")
    return path


def client_env(credentials: tuple[str, str] | None, root_url: str) -> dict[str, str]:
    """The process environment of a client script: no TASKCLUSTER_* leaks in."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TASKCLUSTER_", "TC_"))
    }
    env["TC_ROOT_URL"] = root_url
    env["TC_NPM_DIR"] = str(CLIENT_ENVS / "npm")
    if credentials is not None:
        env["TC_CLIENT_ID"], env["TC_ACCESS_TOKEN"] = credentials
    return env


def run_client(
    env_name: str,
    server: LiveServer,
    scenario: str,
    arg: Json = None,
    credentials: tuple[str, str] | None = ADMIN,
    extra_env: dict[str, str] | None = None,
) -> Json:
    """Run one scenario script in client environment `env_name`; return its JSON output."""
    env_path = env_dir(env_name)
    if env_name == "npm":
        command = ["node", str(CLIENT_SCRIPTS / "npm_scenario.js"), scenario]
    else:
        command = [
            str(env_path / "bin" / "python"),
            str(CLIENT_SCRIPTS / "tc_scenario.py"),
            scenario,
        ]
    if arg is not None:
        command.append(json.dumps(arg))
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
        env={**client_env(credentials, server.root_url), **(extra_env or {})},
        cwd=REPO,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            f"{env_name} client scenario {scenario!r} failed (exit {done.returncode}):\n"
            f"{done.stderr}\n--- server log (tail) ---\n{server.log_text()[-4000:]}"
        )
    return json.loads(done.stdout)


def entry(pool: str, cache_name: str) -> dict[str, str]:
    """A listing element without its `before`."""
    provisioner_id, worker_type = pool.split("/")
    return {"provisionerId": provisioner_id, "workerType": worker_type, "cacheName": cache_name}


def without_before(listing: Json) -> list[dict[str, str]]:
    """The elements of a listing with `before` checked for shape and then dropped."""
    rows = []
    for row in listing["requests"]:
        assert set(row) == {"provisionerId", "workerType", "cacheName", "before"}
        assert TIMESTAMP.fullmatch(row["before"]), row["before"]
        rows.append({key: value for key, value in row.items() if key != "before"})
    return rows


def unordered(rows: list[dict[str, str]]) -> list[tuple[str, str, str]]:
    """Listing elements as sortable tuples, for comparisons that ignore the order."""
    return sorted((row["provisionerId"], row["workerType"], row["cacheName"]) for row in rows)


def instant(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def api_error(outcome: Json) -> tuple[str, int, str]:
    """(exception class, status, error code) of one failed call of a `calls` scenario."""
    assert "error" in outcome, f"expected an error, the call returned {outcome!r}"
    error = outcome["error"]
    status = error.get("status_code", error.get("statusCode"))
    return error["class"], status, error["code"]


@pytest.fixture
def live(server_factory: ServerFactory) -> LiveServer:
    """A fresh server with an empty database, `cacheTime` as in upstream's tests."""
    return server_factory("--cache-time", "300s")


PYTHON_ENVS = pytest.mark.parametrize("env_name", ["tc19", "tc113"])
ALL_ENVS = pytest.mark.parametrize("env_name", ["tc19", "tc113", "npm"])


# -- Python clients -------------------------------------------------------------------------


@PYTHON_ENVS
def test_python_client_generation(env_name: str, live: LiveServer) -> None:
    """Each Python environment holds the pinned client with that generation's pool arguments."""
    info = run_client(env_name, live, "info")
    expected = {
        "tc19": {"version": "19.0.0", "purgeCache_args": ["provisionerId", "workerType"]},
        "tc113": {"version": "113.2.0", "purgeCache_args": ["workerPoolId"]},
    }
    assert info == expected[env_name]


@PYTHON_ENVS
def test_python_publish_purge_cache_requests(env_name: str, live: LiveServer) -> None:
    """Upstream's "Publish purge-cache requests" scenario passes through the Python client."""
    seen = run_client(env_name, live, "publish")

    # Empty store: no requests and no continuationToken key at all.
    assert seen["empty"] == {"requests": []}

    assert without_before(seen["one"]) == [entry(POOL_1, "my-test-cache")]
    assert "continuationToken" not in seen["one"]
    first_before = seen["one"]["requests"][0]["before"]

    # Purging again moves `before` strictly forward; still one entry.
    assert without_before(seen["repurged"]) == [entry(POOL_1, "my-test-cache")]
    repurged_before = seen["repurged"]["requests"][0]["before"]
    assert instant(repurged_before) > instant(first_before)

    assert unordered(without_before(seen["two_names"])) == unordered(
        [entry(POOL_1, "my-test-cache"), entry(POOL_1, "my-test-cache-2")]
    )
    four = [
        entry(POOL_1, "my-test-cache"),
        entry(POOL_1, "my-test-cache-2"),
        entry(POOL_2, "my-test-cache"),
        entry(POOL_3, "my-test-cache"),
    ]
    assert unordered(without_before(seen["three_pools"])) == unordered(four)
    assert "continuationToken" not in seen["three_pools"]

    assert without_before(seen["pool_2"]) == [entry(POOL_2, "my-test-cache")]
    assert without_before(seen["pool_3"]) == [entry(POOL_3, "my-test-cache")]
    assert without_before(seen["pool_1"]) == [
        entry(POOL_1, "my-test-cache"),
        entry(POOL_1, "my-test-cache-2"),
    ]
    assert seen["pool_1"]["requests"][0]["before"] == repurged_before
    for name in ("pool_1", "pool_2", "pool_3"):
        assert set(seen[name]) == {"requests"}, f"{name}: purgeRequests has no other keys"

    # `since` is inclusive: an entry's own `before` returns that entry.
    assert without_before(seen["since_first"]) == without_before(seen["pool_1"])
    assert without_before(seen["since_second"]) == [entry(POOL_1, "my-test-cache-2")]
    assert seen["since_now"] == {"requests": []}


@PYTHON_ENVS
def test_python_reads_without_credentials_are_insufficient_scopes(
    env_name: str, live: LiveServer
) -> None:
    """Anonymous reads raise TaskclusterRestFailure with status 403, InsufficientScopes."""
    outcomes = run_client(
        env_name,
        live,
        "calls",
        [
            {"method": "allPurgeRequests", "credentials": "anonymous"},
            {"method": "purgeRequests", "pool": POOL_2, "credentials": "anonymous"},
        ],
    )
    assert [api_error(outcome) for outcome in outcomes] == [
        ("TaskclusterRestFailure", 403, "InsufficientScopes"),
        ("TaskclusterRestFailure", 403, "InsufficientScopes"),
    ]


@PYTHON_ENVS
def test_python_purge_with_wrong_access_token_is_auth_failure(
    env_name: str, live: LiveServer
) -> None:
    """A purge with a wrong access token raises TaskclusterAuthFailure 401 and stores nothing."""
    outcomes = run_client(
        env_name,
        live,
        "calls",
        [
            {
                "method": "purgeCache",
                "pool": POOL_1,
                "payload": {"cacheName": "my-test-cache"},
                "credentials": {"clientId": ADMIN[0], "accessToken": "not-" + ADMIN[1]},
            },
            {"method": "allPurgeRequests"},
        ],
    )
    assert api_error(outcomes[0]) == ("TaskclusterAuthFailure", 401, "AuthenticationFailed")
    assert outcomes[1] == {"result": {"requests": []}}


@PYTHON_ENVS
def test_python_scopes_decide_per_client(env_name: str, live: LiveServer) -> None:
    """Purge needs `purge-cache:<pool>:<cache>`, reads need theirs; anonymous reads `public/*`."""
    limited = {"clientId": LIMITED[0], "accessToken": LIMITED[1]}
    reader = {"clientId": READER[0], "accessToken": READER[1]}
    outcomes = run_client(
        env_name,
        live,
        "calls",
        [
            {
                "method": "purgeCache",
                "pool": "proj-a/linux",
                "payload": {"cacheName": "cache-1"},
                "credentials": limited,
            },
            {
                "method": "purgeCache",
                "pool": "proj-a/linux",
                "payload": {"cacheName": "cache-2"},
                "credentials": limited,
            },
            {
                "method": "purgeCache",
                "pool": "proj-a/linux",
                "payload": {"cacheName": "cache-1"},
                "credentials": reader,
            },
            {"method": "purgeRequests", "pool": "proj-a/linux", "credentials": reader},
            {"method": "purgeCache", "pool": "public/pool", "payload": {"cacheName": "pub"}},
            {"method": "purgeRequests", "pool": "public/pool", "credentials": "anonymous"},
        ],
    )
    assert outcomes[0] == {"result": None}  # 204 → None
    assert api_error(outcomes[1]) == ("TaskclusterRestFailure", 403, "InsufficientScopes")
    assert api_error(outcomes[2]) == ("TaskclusterRestFailure", 403, "InsufficientScopes")
    assert without_before(outcomes[3]["result"]) == [entry("proj-a/linux", "cache-1")]
    assert outcomes[4] == {"result": None}
    assert without_before(outcomes[5]["result"]) == [entry("public/pool", "pub")]


@PYTHON_ENVS
def test_python_pagination_with_limit(env_name: str, live: LiveServer) -> None:
    """25 purges listed with limit=10 come as pages of 10, 10, 5; only the last has no token."""
    seen = run_client(env_name, live, "paginate", {"pool": "paged/pool", "count": 25, "limit": 10})
    expected = [entry("paged/pool", f"cache-{i:03d}") for i in range(25)]
    for name in ("manual", "handler"):
        pages = seen[name]
        assert [len(page["requests"]) for page in pages] == [10, 10, 5], name
        for page in pages[:-1]:
            token = page["continuationToken"]
            assert isinstance(token, str) and token, name
        assert "continuationToken" not in pages[-1], name
        assert [row for page in pages for row in without_before(page)] == expected, name
    assert seen["handler"] == seen["manual"]
    assert seen["handler_returned"] is None  # the client returns nothing with a handler


@PYTHON_ENVS
def test_python_client_from_served_reference(env_name: str, live: LiveServer) -> None:
    """`createApiClient` on the served api.json yields a working client with `workerPoolId`."""
    seen = run_client(env_name, live, "reference")
    v1 = ["allPurgeRequests", "heartbeat", "lbheartbeat", "ping", "purgeCache", "purgeRequests"]
    # the experimental extensions are in api.json too, as the endpoint table declares them
    extensions = [e.name for e in ENDPOINTS if e.stability == "experimental"]
    assert seen["functions"] == sorted([*v1, "version", *extensions])
    assert seen["purgeCache_args"] == ["workerPoolId"]
    assert seen["ping"]["alive"] is True
    assert seen["purgeCache"] is None
    assert without_before(seen["purgeRequests"]) == [
        entry("reference-built/client", "from-reference")
    ]
    assert without_before(seen["allPurgeRequests"]) == [
        entry("reference-built/client", "from-reference")
    ]


# -- every client ---------------------------------------------------------------------------


@ALL_ENVS
def test_ping_ignores_credentials(env_name: str, live: LiveServer) -> None:
    """`ping` answers `{"alive": true, "uptime": <number>}` anonymously and with a bad token."""
    wrong = {"clientId": ADMIN[0], "accessToken": "not-" + ADMIN[1]}
    outcomes = run_client(
        env_name,
        live,
        "calls",
        [{"method": "ping", "credentials": "anonymous"}, {"method": "ping", "credentials": wrong}],
    )
    for outcome in outcomes:
        assert outcome["result"]["alive"] is True
        assert isinstance(outcome["result"]["uptime"], int | float)


@pytest.mark.parametrize("env_name", ["tc113", "npm"])
def test_dockerflow_endpoints(env_name: str, live: LiveServer) -> None:
    """Current clients' `lbheartbeat`, `heartbeat` and `version` work, credentials unexamined."""
    wrong = {"clientId": ADMIN[0], "accessToken": "not-" + ADMIN[1]}
    outcomes = run_client(
        env_name,
        live,
        "calls",
        [
            {"method": "lbheartbeat", "credentials": wrong},
            {"method": "heartbeat", "credentials": "anonymous"},
            {"method": "version", "credentials": wrong},
        ],
    )
    assert outcomes[0] == {"result": {}}
    assert outcomes[1] == {"result": {}}
    version = outcomes[2]["result"]
    assert set(version) == {"version", "commit", "source", "build"}
    assert all(isinstance(value, str) for value in version.values())


@ALL_ENVS
def test_unusual_cache_names_round_trip(env_name: str, live: LiveServer) -> None:
    """Non-ASCII, empty and `*`/`/`/`:` cache names are signed, stored and listed verbatim."""
    names = ["caché/ü *:€ 🙂", "", "a:b*c/d", "x" * 300]
    calls: list[Json] = [
        {"method": "purgeCache", "pool": "odd/names", "payload": {"cacheName": name}}
        for name in names
    ]
    calls.append({"method": "purgeRequests", "pool": "odd/names"})
    outcomes = run_client(env_name, live, "calls", calls)
    assert outcomes[:-1] == [{"result": None}] * len(names)
    listed = without_before(outcomes[-1]["result"])
    assert unordered(listed) == unordered([entry("odd/names", name) for name in names])


@ALL_ENVS
def test_signed_urls(env_name: str, live: LiveServer) -> None:
    """Bewit URLs built by the client read both listings anonymously; unsigned is 403."""
    pool = f"signed/{env_name}"
    run_client(
        env_name,
        live,
        "calls",
        [{"method": "purgeCache", "pool": pool, "payload": {"cacheName": "signed-cache"}}],
    )
    seen = run_client(
        env_name,
        live,
        "signed-urls",
        {"pool": pool, "since": "2019-10-07T15:46:01.123Z"},
        credentials=READER,
    )
    # The seed-era client puts a literal slash between the ids; current ones send `%2F`.
    assert ("signed%2F" in seen["purgeRequests"]["url"]) == (env_name != "tc19")
    for name in ("purgeRequests", "purgeRequests_since", "allPurgeRequests"):
        assert "bewit=" in seen[name]["url"], name
        assert seen[name]["status"] == 200, (name, seen[name]["body"])
        assert without_before(seen[name]["body"]) == [entry(pool, "signed-cache")], name
    assert seen["unsigned"]["status"] == 403
    assert seen["unsigned"]["body"]["code"] == "InsufficientScopes"


@ALL_ENVS
def test_temporary_credentials_and_authorized_scopes(env_name: str, live: LiveServer) -> None:
    """Client-minted certificates (unnamed, named) and `authorizedScopes` narrow the scopes."""
    limited = {"clientId": LIMITED[0], "accessToken": LIMITED[1]}

    def purge(cache: str, **extra: Json) -> Json:
        return {
            "method": "purgeCache",
            "pool": "temp/pool",
            "payload": {"cacheName": cache},
            **extra,
        }

    outcomes = run_client(
        env_name,
        live,
        "calls",
        [
            purge("ok", temporary={"scopes": ["purge-cache:temp/pool:ok"]}),
            purge("no", temporary={"scopes": ["purge-cache:temp/pool:ok"]}),
            purge(
                "named",
                temporary={"scopes": ["purge-cache:temp/pool:named"], "name": "admin/temp-1"},
            ),
            {
                "method": "purgeRequests",
                "pool": "temp/pool",
                "temporary": {"scopes": ["purge-cache:purge-requests::temp/*"]},
            },
            purge("auth-ok", authorizedScopes=["purge-cache:temp/pool:auth-ok"]),
            purge("auth-no", authorizedScopes=["purge-cache:temp/pool:auth-ok"]),
            # authorizedScopes beyond the client's own scopes: an authentication failure.
            {
                "method": "purgeCache",
                "pool": "proj-a/linux",
                "payload": {"cacheName": "cache-1"},
                "credentials": limited,
                "authorizedScopes": ["*"],
            },
            # A certificate with scopes its issuer lacks: an authentication failure.
            purge("x", credentials=limited, temporary={"scopes": ["purge-cache:temp/pool:x"]}),
            purge(
                "both",
                temporary={"scopes": ["purge-cache:temp/*"]},
                authorizedScopes=["purge-cache:temp/pool:both"],
            ),
        ],
    )
    assert outcomes[0] == {"result": None}
    assert api_error(outcomes[1])[1:] == (403, "InsufficientScopes")
    assert outcomes[2] == {"result": None}
    assert unordered(without_before(outcomes[3]["result"])) == unordered(
        [entry("temp/pool", "ok"), entry("temp/pool", "named")]
    )
    assert outcomes[4] == {"result": None}
    assert api_error(outcomes[5])[1:] == (403, "InsufficientScopes")
    assert api_error(outcomes[6])[1:] == (401, "AuthenticationFailed")
    assert api_error(outcomes[7])[1:] == (401, "AuthenticationFailed")
    assert outcomes[8] == {"result": None}


# -- JavaScript client ----------------------------------------------------------------------


def test_npm_client_version(live: LiveServer) -> None:
    """The npm environment holds taskcluster-client 87.1.3."""
    assert run_client("npm", live, "info") == {"version": "87.1.3"}


def test_npm_ping_purge_and_listings(live: LiveServer) -> None:
    """The JS client pings, purges (Hawk without payload hash) and reads both listings."""
    # A zone with a half-hour offset, so that `Date.toString()` carries `GMT-0330 (...)`.
    seen = run_client("npm", live, "publish", extra_env={"TZ": "America/St_Johns"})
    assert seen["ping"]["alive"] is True
    assert seen["empty"] == {"requests": []}
    assert seen["purge"] is None
    assert unordered(without_before(seen["all"])) == unordered(
        [
            entry(POOL_1, "my-test-cache"),
            entry(POOL_1, "my-test-cache-2"),
            entry(POOL_2, "my-test-cache"),
        ]
    )
    assert "continuationToken" not in seen["all"]
    assert without_before(seen["pool_1"]) == [
        entry(POOL_1, "my-test-cache"),
        entry(POOL_1, "my-test-cache-2"),
    ]
    assert without_before(seen["pool_2"]) == [entry(POOL_2, "my-test-cache")]
    assert without_before(seen["since_second"]) == [entry(POOL_1, "my-test-cache-2")]
    assert seen["since_now"] == {"requests": []}
    # `since` in `Date.prototype.toString()` form has whole seconds: all from that second on.
    assert re.search(r" GMT[+-]\d{4} \(", seen["since_date_string_sent"])
    second_before = instant(seen["pool_1"]["requests"][1]["before"]).replace(microsecond=0)
    expected = [
        {key: value for key, value in row.items() if key != "before"}
        for row in seen["pool_1"]["requests"]
        if instant(row["before"]) >= second_before
    ]
    assert without_before(seen["since_date_string"]) == expected


def test_npm_errors(live: LiveServer) -> None:
    """The JS client gets 403 InsufficientScopes anonymously and 401 for a wrong token."""
    outcomes = run_client(
        "npm",
        live,
        "calls",
        [
            {"method": "allPurgeRequests", "credentials": "anonymous"},
            {"method": "purgeRequests", "pool": POOL_2, "credentials": "anonymous"},
            {
                "method": "purgeCache",
                "pool": POOL_1,
                "payload": {"cacheName": "my-test-cache"},
                "credentials": {"clientId": ADMIN[0], "accessToken": "not-" + ADMIN[1]},
            },
            {"method": "purgeRequests", "pool": "public/pool", "credentials": "anonymous"},
        ],
    )
    assert [api_error(outcome)[1:] for outcome in outcomes[:3]] == [
        (403, "InsufficientScopes"),
        (403, "InsufficientScopes"),
        (401, "AuthenticationFailed"),
    ]
    assert outcomes[3] == {"result": {"requests": []}}


def test_npm_pagination_with_limit(live: LiveServer) -> None:
    """The JS client pages 25 purges with limit 10 as 10, 10, 5, the last page without token."""
    seen = run_client("npm", live, "paginate", {"pool": "paged/pool", "count": 25, "limit": 10})
    pages = seen["pages"]
    assert [len(page["requests"]) for page in pages] == [10, 10, 5]
    assert all(isinstance(page["continuationToken"], str) for page in pages[:-1])
    assert all(page["continuationToken"] for page in pages[:-1])
    assert "continuationToken" not in pages[-1]
    assert [row for page in pages for row in without_before(page)] == [
        entry("paged/pool", f"cache-{i:03d}") for i in range(25)
    ]

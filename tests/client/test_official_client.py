"""Our client and the official `taskcluster` Python client (113.x), given the same scenario
on two fresh servers, see the same results and the same errors.

The official client runs in its own environment made by `scripts/setup-client-envs.sh`
(`.ci-work/clients/tc113`); without it this test skips and says so, except in CI (`CI=true`),
where it fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from client.conftest import MakeClient
from purgecache.client import ApiError, Credentials

from conftest import ADMIN, LIMITED, READER, LiveServer

HERE = Path(__file__).resolve().parent
OFFICIAL_PYTHON = HERE.parents[1] / ".ci-work" / "clients" / "tc113" / "bin" / "python"

POOL_1 = "dummy-provisioner-extended-extended/dummy-worker-extended-extended"
POOL_2 = "dummy-provisioner-extended-extended-2/dummy-worker-extended-extended"
POOL_3 = "dummy-provisioner-extended-extended/dummy-worker-extended-extended-2"
WRONG = ("admin", "not-the-token")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def step(
    method: str,
    *args: object,
    credentials: tuple[str, str] | None = ADMIN,
    authorized_scopes: list[str] | None = None,
    **query: object,
) -> dict[str, Any]:
    return {
        "method": method,
        "args": list(args),
        "query": query,
        "credentials": credentials,
        "authorizedScopes": authorized_scopes,
    }


SCENARIO = [
    step("allPurgeRequests"),
    step("purgeCache", POOL_1, {"cacheName": "my-test-cache"}),
    step("allPurgeRequests"),
    step("purgeCache", POOL_1, {"cacheName": "my-test-cache"}),
    step("purgeCache", POOL_1, {"cacheName": "my-test-cache-2"}),
    step("purgeCache", POOL_2, {"cacheName": "my-test-cache"}),
    step("purgeCache", POOL_3, {"cacheName": "my-test-cache"}),
    step("allPurgeRequests"),
    step("allPurgeRequests", limit=2),
    step("purgeRequests", POOL_1),
    step("purgeRequests", POOL_2),
    step("purgeRequests", POOL_1, since="2000-01-01T00:00:00.000Z"),
    step("purgeRequests", POOL_1, since="2999-01-01T00:00:00.000Z"),
    step("purgeRequests", POOL_1, since="not a time"),
    step("purgeRequests", "not-a-pool"),
    step("purgeRequests", POOL_3, credentials=READER),
    step("purgeCache", "proj-a/linux", {"cacheName": "cache-1"}, credentials=LIMITED),
    step("purgeCache", "proj-a/linux", {"cacheName": "cache-2"}, credentials=LIMITED),
    step("purgeRequests", "public/linux", credentials=None),
    step("allPurgeRequests", credentials=None),
    step("purgeCache", POOL_1, {"cacheName": "x"}, credentials=WRONG),
    step("purgeCache", POOL_2, {"cacheName": "y"}, authorized_scopes=[f"purge-cache:{POOL_2}:x"]),
]


def run_ours(make_client: MakeClient, root_url: str, spec: dict[str, Any]) -> dict[str, Any]:
    """One step with our client, as the official client would report it."""
    credentials = Credentials(*spec["credentials"]) if spec["credentials"] else None
    client = make_client(credentials, root_url=root_url, authorized_scopes=spec["authorizedScopes"])
    query, args = spec["query"], spec["args"]
    calls: dict[str, Callable[[], Any]] = {
        "purgeCache": lambda: client.purge_cache(args[0], args[1]["cacheName"]),
        "purgeRequests": lambda: client.purge_requests(args[0], query.get("since")).to_json(),
        "allPurgeRequests": lambda: client.all_purge_requests(
            query.get("continuationToken"), query.get("limit")
        ).to_json(),
    }
    try:
        return {"result": calls[spec["method"]]()}
    except ApiError as error:
        return {"error": {"status": error.status, "code": error.code, "message": error.message}}


def run_official(root_url: str) -> list[dict[str, Any]]:
    """The whole scenario with the official client, in its own environment."""
    result = subprocess.run(
        [str(OFFICIAL_PYTHON), str(HERE / "official_scenario.py"), root_url, json.dumps(SCENARIO)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    outcomes: list[dict[str, Any]] = json.loads(result.stdout)
    return outcomes


def normalized(outcomes: list[dict[str, Any]]) -> str:
    """Times (`before`, the error footer's time) vary between runs; everything else must not."""
    return TIME.sub("<time>", json.dumps(outcomes, indent=1, sort_keys=True))


@pytest.mark.skipif(
    not OFFICIAL_PYTHON.exists() and os.environ.get("CI") != "true",
    reason=f"official client environment missing ({OFFICIAL_PYTHON.parent.parent}): "
    "run scripts/setup-client-envs.sh",
)
def test_same_scenario_same_results_as_the_official_client(
    client_factory: MakeClient, backend_server_factory: Callable[..., LiveServer], tmp_path: Path
) -> None:
    """Purges, listings, pages, `since`, scopes, anonymous, 400/401/403: identical outcomes."""
    official = run_official(backend_server_factory(data_dir=tmp_path / "official").root_url)
    ours_url = backend_server_factory(data_dir=tmp_path / "ours").root_url
    ours = [run_ours(client_factory, ours_url, spec) for spec in SCENARIO]
    assert normalized(ours) == normalized(official)
    kinds = [next(iter(outcome)) for outcome in official]
    assert kinds.count("error") == 6 and len(official[7]["result"]["requests"]) == 4

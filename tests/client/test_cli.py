"""The client commands of the CLI, run as a user runs them: `python -m purgecache ...` in a
subprocess, configured by TASKCLUSTER_* variables, against the live server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from conftest import ADMIN, LIMITED, LiveServer, free_port, start_server
from hawk_signing import HawkAuth

CLIENT_COMMANDS = ["purge", "cancel", "history", "list", "requests", "ping", "signed-url"]

LIMITED_ENV = {"TASKCLUSTER_CLIENT_ID": LIMITED[0], "TASKCLUSTER_ACCESS_TOKEN": LIMITED[1]}

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One SQLite server for the module: the CLI is a layer over the client, whose tests
    cover both backends."""
    live = start_server(tmp_path_factory.mktemp("cli-server"))
    yield live
    live.stop()


@pytest.fixture
def run(server: LiveServer) -> Run:
    """Run the CLI with the live server's root URL and admin credentials (overridable)."""

    def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("TASKCLUSTER_")}
        environ |= {
            "TASKCLUSTER_ROOT_URL": server.root_url,
            "TASKCLUSTER_CLIENT_ID": ADMIN[0],
            "TASKCLUSTER_ACCESS_TOKEN": ADMIN[1],
            **env,
        }
        command = [sys.executable, "-m", "purgecache", *args]
        return subprocess.run(command, capture_output=True, text=True, env=environ, timeout=60)

    return run_cli


def assert_one_line_error(result: subprocess.CompletedProcess[str], status: int) -> str:
    """Failed with `status`, one `Error:` line on stderr, no traceback, nothing on stdout."""
    assert result.returncode == status, result
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    return result.stderr


def test_purge_then_list_and_requests_show_the_caches(run: Run, pool: str) -> None:
    """purge several caches, then see them in `list --pool` and `requests` tables."""
    result = run("purge", pool, "checkouts", "sccache")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"purged checkouts on {pool}",
        f"purged sccache on {pool}",
    ]
    for command in (["list", "--pool", pool], ["requests", pool]):
        lines = run(*command).stdout.splitlines()
        assert lines[0].split() == ["WORKER", "POOL", "CACHE", "BEFORE"]
        assert [line.split()[:2] for line in lines[1:]] == [[pool, "checkouts"], [pool, "sccache"]]


def test_json_output_is_the_api_shape(run: Run, pool: str) -> None:
    """`--json` prints `{"requests": [...]}` with the API's fields, for list and requests."""
    run("purge", pool, "c1")
    for command in (["list", "--pool", pool, "--json"], ["requests", pool, "--json"]):
        (entry,) = json.loads(run(*command).stdout)["requests"]
        assert entry.keys() == {"provisionerId", "workerType", "cacheName", "before"}
        assert f"{entry['provisionerId']}/{entry['workerType']}" == pool


def test_list_covers_every_page(run: Run, server: LiveServer, pool: str) -> None:
    """`list` follows continuation tokens: it shows what the API lists page by page."""
    run("purge", pool, *(f"c{i}" for i in range(3)))
    listed = json.loads(run("list", "--json").stdout)["requests"]
    with httpx.Client(timeout=10) as http:
        url = f"{server.api}/purge-cache/list"
        direct = http.get(url, auth=HawkAuth(*ADMIN), params={"limit": 1000}).json()
    assert listed == direct["requests"]


def test_requests_since(run: Run, pool: str) -> None:
    """`--since` takes an age (1h), a date or an ISO time; a future time lists nothing."""
    run("purge", pool, "c")
    assert json.loads(run("requests", pool, "--since", "1h", "--json").stdout)["requests"]
    assert json.loads(run("requests", pool, "--since", "2000-01-01", "--json").stdout)["requests"]
    future = run("requests", pool, "--since", "2999-01-01T00:00:00Z")
    assert future.stdout == "no open purge requests\n"


def test_ping(run: Run, server: LiveServer) -> None:
    """`ping` works without credentials, for humans and as JSON."""
    result = run("ping", TASKCLUSTER_CLIENT_ID="", TASKCLUSTER_ACCESS_TOKEN="")
    assert result.stdout.startswith(f"alive: {server.root_url} (up ")
    assert json.loads(run("ping", "--json").stdout)["alive"] is True


def test_signed_url_opens_without_credentials(run: Run, pool: str) -> None:
    """`signed-url` prints a URL that curl-like clients can GET until it expires."""
    run("purge", pool, "signed")
    url = run("signed-url", "purge-requests", pool, "--expires-in", "2m").stdout.strip()
    (entry,) = httpx.get(url).json()["requests"]
    assert entry["cacheName"] == "signed"
    listing = run("signed-url", "all-purge-requests", "--limit", "1").stdout.strip()
    assert len(httpx.get(listing).json()["requests"]) == 1


def test_through_the_proxy_variable(run: Run) -> None:
    """TASKCLUSTER_PROXY_URL wins and requests go unsigned (anonymous scopes apply)."""
    result = run(
        "requests",
        "public/linux",
        TASKCLUSTER_PROXY_URL=run("ping").stdout.split()[1],
        TASKCLUSTER_ROOT_URL="http://127.0.0.1:9",
        TASKCLUSTER_ACCESS_TOKEN="wrong",
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("args", "env", "status", "words"),
    [
        (["list"], {"TASKCLUSTER_ROOT_URL": ""}, 3, "TASKCLUSTER_ROOT_URL"),
        (["list"], {"TASKCLUSTER_ACCESS_TOKEN": ""}, 3, "TASKCLUSTER_ACCESS_TOKEN"),
        (["signed-url", "ping"], {"TASKCLUSTER_CLIENT_ID": ""}, 3, "need credentials"),
        (["list"], {"TASKCLUSTER_ACCESS_TOKEN": "wrong"}, 4, "401 AuthenticationFailed"),
        (
            ["purge", "proj-a/linux", "cache-2"],
            dict(zip(["TASKCLUSTER_CLIENT_ID", "TASKCLUSTER_ACCESS_TOKEN"], LIMITED, strict=True)),
            4,
            "purge-cache:proj-a/linux:cache-2",
        ),
        (["purge", "a/b", "x" * 4097], {}, 1, "400 InputValidationError"),
        (["list"], {"TASKCLUSTER_CLIENT_ID": ""}, 4, "no credentials were sent: set"),
    ],
    ids=[
        "no-root-url",
        "no-token",
        "unsigned-signed-url",
        "bad-token",
        "no-scope",
        "refused-input",
        "anonymous",
    ],
)
def test_failures_are_one_line_with_a_documented_status(
    run: Run, args: list[str], env: dict[str, str], status: int, words: str
) -> None:
    """Each kind of failure: its exit status, one line on stderr, never a traceback."""
    assert words in assert_one_line_error(run(*args, **env), status)


def test_unreachable_service_is_status_5(run: Run) -> None:
    """Nobody listening at the root URL: status 5 after the retries."""
    result = run("ping", TASKCLUSTER_ROOT_URL=f"http://127.0.0.1:{free_port()}")
    assert "could not reach" in assert_one_line_error(result, 5)


@pytest.mark.parametrize(
    "args",
    [
        ["purge", "not-a-pool", "c"],
        ["purge", "a/b"],
        ["list", "--pool", "x"],
        ["signed-url", "purge-requests"],
        ["signed-url", "ping", "a/b"],
        ["signed-url", "nope"],
        ["requests", "a/b", "--since", "garbage"],
    ],
)
def test_usage_errors_are_status_2(run: Run, args: list[str]) -> None:
    """Bad arguments are caught before any request: status 2, click's usage message."""
    result = run(*args)
    assert result.returncode == 2 and "Usage:" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", CLIENT_COMMANDS)
def test_every_command_has_help_with_examples(run: Run, command: str) -> None:
    """`--help` shows examples, the TASKCLUSTER_* variables and the exit statuses."""
    result = run(command, "--help")
    assert result.returncode == 0
    for words in ("Examples:", "TASKCLUSTER_ROOT_URL", "TASKCLUSTER_PROXY_URL", "Exit status"):
        assert words in result.stdout


def test_before_is_shown_in_utc(run: Run, pool: str) -> None:
    """The BEFORE column is the API's UTC time of the purge."""
    started = datetime.now(UTC).replace(microsecond=0)
    run("purge", pool, "c")
    (line,) = run("requests", pool).stdout.splitlines()[1:]
    before = datetime.fromisoformat(line.split()[-1])
    assert started <= before.replace(microsecond=0) <= datetime.now(UTC)

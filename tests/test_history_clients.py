"""Provenance end to end (issue 13, items 1 and 2): the OFFICIAL Taskcluster clients purge
through the v1 API and `purgecache history` shows who did it and how they signed;
`purgecache purge --reason` goes through `createPurge`, and against a service without it
(upstream Taskcluster) fails with exit 1 having purged nothing. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from test_official_clients import run_client

from conftest import ADMIN, LiveServer, db_args, start_server

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One server per backend for the module."""
    server = start_server(tmp_path_factory.mktemp("history-e2e"), *db_args(request.param))
    yield server
    server.stop()


def cli(root_url: str) -> Run:
    """The `purgecache` CLI as a user runs it, with admin credentials, against `root_url`."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("TASKCLUSTER_")}
        environ |= {
            "TASKCLUSTER_ROOT_URL": root_url,
            "TASKCLUSTER_CLIENT_ID": ADMIN[0],
            "TASKCLUSTER_ACCESS_TOKEN": ADMIN[1],
        }
        command = [sys.executable, "-m", "purgecache", *args]
        return subprocess.run(command, capture_output=True, text=True, env=environ, timeout=60)

    return run


def json_lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, str]]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_official_clients_purge_through_v1_and_the_history_shows_them(live: LiveServer) -> None:
    """taskcluster 19 (literal slash), 113 (`%2F`) and the JavaScript client each purge through
    `purgeCache`; `purgecache history --json` lists one event each, newest first, with the
    client id, the spelling each signature covered and each client's User-Agent."""
    pool = "official/history"
    for env_name in ("tc19", "tc113", "npm"):
        call = {"method": "purgeCache", "pool": pool, "payload": {"cacheName": env_name}}
        assert run_client(env_name, live, "calls", [call]) == [{"result": None}]
    events = json_lines(cli(live.root_url)("history", pool, "--json"))
    assert [e["cacheName"] for e in events] == ["npm", "tc113", "tc19"]
    spelling = {e["cacheName"]: e["signedSpelling"] for e in events}
    assert spelling == {"tc19": "slash", "tc113": "%2F", "npm": "%2F"}
    for event in events:
        assert (event["clientId"], event["endpoint"], event["sourceIp"]) == (
            "admin",
            "purgeCache",
            "127.0.0.1",
        )
        assert event["userAgent"]


def test_purge_with_a_reason_is_in_the_history_table_and_filters(live: LiveServer) -> None:
    """`purge --reason --link` uses createPurge; `history` shows it in a table and by filter;
    a re-purge is another event."""
    run = cli(live.root_url)
    pool = "reason/history"
    for _ in range(2):
        done = run(
            "purge",
            pool,
            "ck",
            "--reason",
            "corrupt after upgrade",
            "--link",
            "https://bugs.example/7",
        )
        assert (done.returncode, done.stdout) == (0, f"purged ck on {pool}\n"), done.stderr
    assert run("purge", pool, "other").returncode == 0
    table = run("history", pool, "--cache", "ck", "--since", "1h")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == [
        *("TIME", "WORKER", "POOL", "CACHE", "CLIENT", "VIA", "POLICY", "ENDED", "REASON")
    ]
    assert len(rows) == 2
    assert [row.split()[5:7] for row in rows] == [
        ["-", "-"],
        ["-", "superseded"],
    ]  # the re-purge ended the first
    assert all(row.split()[1:5] == [pool, "ck", "admin", "createPurge"] for row in rows)
    assert all(row.endswith("corrupt after upgrade https://bugs.example/7") for row in rows)
    limited = run("history", pool, "--limit", "1", "--json")
    assert [e["cacheName"] for e in json_lines(limited)] == ["other"]
    assert "1 of 3 purges shown" in limited.stderr
    assert json_lines(run("history", "--client", "nobody", "--json")) == []
    refused = run("purge", pool, "ck", "--link", "ftp://nope")
    assert refused.returncode == 1 and "InputValidationError" in refused.stderr


class _Upstream(BaseHTTPRequestHandler):
    """A service without the extensions: every request is a 404, and recorded."""

    seen: ClassVar[list[str]] = []

    def _answer(self) -> None:
        self.seen.append(f"{self.command} {self.path}")
        body = b'{"code":"ResourceNotFound","message":"Not found","requestInfo":{}}'
        self.send_response(404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("command", [["purge", "a/b", "c", "--reason", "why"], ["history"]])
def test_without_the_extensions_the_cli_fails_clearly_and_purges_nothing(
    upstream: str, command: list[str]
) -> None:
    """Against a service without createPurge and listPurgeHistory: exit 1, one line naming
    the missing endpoint; the reason is never dropped for a v1 purge."""
    _Upstream.seen.clear()
    result = cli(upstream)(*command)
    assert result.returncode == 1, result
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert "this service does not offer" in result.stderr
    assert "nothing was done" in result.stderr
    assert not any("/v1/purge-cache/" in line for line in _Upstream.seen), _Upstream.seen
    assert len(_Upstream.seen) == 1 and "/v1/ext/" in _Upstream.seen[0]  # no retries on a 404

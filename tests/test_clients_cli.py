"""`purgecache clients ...`: credentials managed from the command line, written atomically and
privately, and picked up by a running server without a restart.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from purgecache.auth.clients import load_clients
from purgecache.cli import main

from conftest import ADMIN, CLIENTS_TOML, LiveServer, log_records, worker_pids
from hawk_signing import HawkAuth

ServerFactory = Callable[..., LiveServer]
READ_SCOPE = "purge-cache:purge-requests::*"


def clients_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`purgecache clients ARGS` in a process of its own, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "purgecache", "clients", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )


def token_of(result: subprocess.CompletedProcess[str] | Result) -> str:
    """The access token `add` or `rotate` printed (in the TASKCLUSTER_* form)."""
    code = (
        result.returncode if isinstance(result, subprocess.CompletedProcess) else result.exit_code
    )
    assert code == 0, result.stderr
    values = dict(line.split("=", 1) for line in result.stdout.splitlines())
    return values["TASKCLUSTER_ACCESS_TOKEN"]


def answer_within(
    url: str, auth: HawkAuth, expected: int, seconds: float = 5, message: str = ""
) -> tuple[float, httpx.Response]:
    """Seconds until a signed GET of `url` answers `expected` with `message` in its body, and
    that answer (failing after `seconds`). With several workers each reloads on its own: the
    first such answer says that one has; what a single request gets next may still come from
    another, one that has not even loaded the previous change yet."""
    started = time.monotonic()
    while (
        answer := httpx.get(url, auth=auth, timeout=5)
    ).status_code != expected or message not in answer.text:
        assert time.monotonic() - started < seconds, f"still {answer.status_code} {answer.text}"
        time.sleep(0.05)
    return time.monotonic() - started, answer


def status_within(url: str, auth: HawkAuth, expected: int, seconds: float = 5) -> float:
    """Seconds until a signed GET of `url` answers `expected` (failing after `seconds`)."""
    return answer_within(url, auth, expected, seconds)[0]


def test_a_running_server_follows_the_commands(server_factory: ServerFactory) -> None:
    """add, disable, enable, rotate and remove change what a running server accepts within
    about two seconds, with no SIGHUP and no worker replaced."""
    live = server_factory("--workers", "2")
    workers = worker_pids(live)
    path = live.data_dir / "test-clients.toml"
    url = f"{live.api}/purge-cache/new%2Fpool"
    inode = path.stat().st_ino

    token = token_of(clients_cli("add", "newcomer", "--scope", READ_SCOPE, "--clients", str(path)))
    assert status_within(url, HawkAuth("newcomer", token), 200) < 2.5
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_ino != inode  # replaced in one rename, never half-written

    def run(*args: str) -> Result:  # in this process, the file named by the variable
        return CliRunner().invoke(main, ["clients", *args], env={"PURGECACHE_CLIENTS": str(path)})

    assert run("disable", "newcomer").exit_code == 0
    disabled = "Client with clientId 'newcomer' is disabled"
    _, refused = answer_within(url, HawkAuth("newcomer", token), 401, message=disabled)
    assert refused.json()["message"].startswith(disabled)
    assert run("enable", "newcomer").exit_code == 0
    rotated = token_of(run("rotate", "newcomer"))
    status_within(url, HawkAuth("newcomer", rotated), 200)
    status_within(url, HawkAuth("newcomer", token), 401)  # the old token no longer works

    assert run("remove", "newcomer").exit_code == 0
    status_within(url, HawkAuth("newcomer", rotated), 401)
    assert worker_pids(live) == workers
    assert httpx.get(url, auth=HawkAuth(*ADMIN)).status_code == 200


def test_a_running_server_follows_edits_and_ignores_a_broken_file(
    server_factory: ServerFactory,
) -> None:
    """An edit in place (same inode) is picked up; a broken file is reported once and the
    clients in force stay."""
    live = server_factory()
    path = live.data_dir / "test-clients.toml"
    url = f"{live.api}/purge-cache/edit%2Fpool"
    editor = HawkAuth("editor", "editor-token-0123456789")
    inode = path.stat().st_ino
    with path.open("a") as handle:
        handle.write('\n[[clients]]\nclient_id = "editor"\n')
        handle.write(f'access_token = "editor-token-0123456789"\nscopes = ["{READ_SCOPE}"]\n')
    assert path.stat().st_ino == inode
    status_within(url, editor, 200)

    path.write_text("this is [not toml")
    deadline = time.monotonic() + 5
    while not log_records(live, "clients-reload-failed"):
        assert time.monotonic() < deadline, live.log_text()
        time.sleep(0.05)
    time.sleep(1.5)  # more checks of the same broken file say nothing more
    assert len(log_records(live, "clients-reload-failed")) == 1
    assert httpx.get(url, auth=editor).status_code == 200


def test_list_and_show_never_print_a_token(tmp_path: Path) -> None:
    """list and show name clients, states, expiry and scopes, never access tokens; the data
    directory (option or variable) finds its clients.toml."""
    data = tmp_path / "data"
    run = CliRunner().invoke
    added = run(main, ["clients", "add", "lister", "--scope", READ_SCOPE, "--data-dir", str(data)])
    token = token_of(added)
    expired = ["add", "old", "--expires", "2020-01-01T00:00:00Z", "--data-dir", str(data)]
    assert run(main, ["clients", *expired]).exit_code == 0
    assert run(main, ["clients", "disable", "old", "--data-dir", str(data)]).exit_code == 0
    listed = run(main, ["clients", "list"], env={"PURGECACHE_DATA_DIR": str(data)})
    assert listed.stdout.splitlines() == [
        f"lister\tenabled\tnever\t{READ_SCOPE}",
        "old\tdisabled\t2020-01-01T00:00:00Z\t-",
    ]
    shown = run(main, ["clients", "show", "lister", "--data-dir", str(data)])
    assert (
        shown.stdout
        == f"client_id: lister\nstate: enabled\nexpires: never\nscopes:\n  {READ_SCOPE}\n"
    )
    assert token not in listed.output + shown.output
    assert token not in added.stderr  # printed once, on stdout only
    assert (data / "clients.toml").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "admin"), "Error: client 'admin' exists in {path}: rotate or remove it"),
        (("rotate", "nobody"), "Error: no client 'nobody' in {path}"),
        (("remove", "nobody"), "Error: no client 'nobody' in {path}"),
        (("show", "nobody"), "Error: no client 'nobody' in {path}"),
        (("add", "bad id"),
         "Error: 'bad id' is not a Taskcluster client id (A-Z a-z 0-9 and !@/:.+|_-)"),
        (("add", "x", "--scope", "caf\u00e9"),
         "Error: 'caf\u00e9' is not a scope (printable ASCII)"),
        (("add", "x", "--expires", "soon"),
         "Error: the changed file would be invalid: clients[3] (x): expires is not an RFC 3339 "
         "date-time"),
    ],
)  # fmt: skip
def test_a_change_that_cannot_be_made_is_one_line(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    """Refused changes exit 1 with one line and leave the file as it was."""
    path = tmp_path / "clients.toml"
    path.write_text(CLIENTS_TOML)
    result = CliRunner().invoke(main, ["clients", *args, "--clients", str(path)])
    assert result.exit_code == 1
    assert result.output == message.format(path=path) + "\n"
    assert path.read_text() == CLIENTS_TOML


def test_a_missing_file_is_created_by_add_only(tmp_path: Path) -> None:
    """`list` on a missing file says so; `add` creates it with just that client."""
    path = tmp_path / "sub" / "clients.toml"
    listed = CliRunner().invoke(main, ["clients", "list", "--clients", str(path)])
    assert listed.exit_code == 1
    assert f"cannot read clients file {path}" in listed.output
    added = CliRunner().invoke(main, ["clients", "add", "first", "--clients", str(path)])
    assert added.exit_code == 0, added.output
    assert list(load_clients(path).clients) == ["first"]


ROUND_TRIP = """
anonymous_scopes = ["purge-cache:purge-requests::public/*"]

[[roles]]
role_id = "project:\\"quoted\\" back\\\\slash"
scopes = ["purge-cache:proj-a/*"]

[[roles]]
role_id = "caf\u00e9\\t\\u007f"
scopes = []

[[clients]]
client_id = "kept"
access_token = "kept-token-0123456789"
scopes = ["assume:project:\\"quoted\\" back\\\\slash"]
expires = 2031-02-03T04:05:06Z

[[clients]]
client_id = "changed"
access_token = "changed-token-0123456789"
scopes = []
expires = "2030-01-01T00:00:00Z"
"""


def test_a_rewrite_keeps_everything_else(tmp_path: Path) -> None:
    """Disabling one client rewrites the file with every other key and value as it was,
    private (0600), and owned by the old file's owner when root rewrites it."""
    path = tmp_path / "clients.toml"
    path.write_text(ROUND_TRIP)
    path.chmod(0o644)
    if os.geteuid() == 0:
        os.chown(path, 4321, 4321)
    result = CliRunner().invoke(main, ["clients", "disable", "changed", "--clients", str(path)])
    assert result.exit_code == 0, result.output
    before, after = tomllib.loads(ROUND_TRIP), tomllib.loads(path.read_text())
    before["clients"][1]["disabled"] = True
    assert after == before
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    if os.geteuid() == 0:
        assert (path.stat().st_uid, path.stat().st_gid) == (4321, 4321)
    assert not [p for p in tmp_path.iterdir() if p.name != "clients.toml"]  # no leftovers


def test_commands_at_the_same_moment_lose_no_change(tmp_path: Path) -> None:
    """Four `add` at once: the file ends with all four (writers take turns)."""
    path = tmp_path / "clients.toml"
    results: list[int] = []

    def add(number: int) -> None:
        results.append(clients_cli("add", f"c{number}", "--clients", str(path)).returncode)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [0] * 4
    assert sorted(load_clients(path).clients) == [f"c{n}" for n in range(4)]

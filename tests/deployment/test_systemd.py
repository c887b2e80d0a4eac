"""The systemd units in deploy/systemd: checked by systemd itself (`systemd-analyze verify` and
its offline security review), and the service unit's own ExecStart, environment and ExecReload
run against a real `serve` (no systemd runs as PID 1 here, so the sandbox itself is not run)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from conftest import LiveServer, free_port, wait_until_serving
from deployment.tools import DEPLOY, installed_purgecache, require_tool
from hawk_signing import HawkAuth

UNITS = DEPLOY / "systemd"
INSTALLED = "/opt/purgecache/bin/purgecache"


def service_entries(unit: Path) -> list[tuple[str, str]]:
    """The `Key=value` lines of the unit's [Service] section, in order."""
    entries, section = [], ""
    for line in unit.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            entries.append((key, value))
    return entries


def with_install_path(unit: Path, tmp_path: Path) -> Path:
    """A copy of the unit whose commands name the purgecache installed here instead of
    /opt/purgecache (systemd-analyze checks that each command exists)."""
    text = unit.read_text()
    assert INSTALLED in text
    copy = tmp_path / unit.name
    copy.write_text(text.replace(INSTALLED, installed_purgecache()))
    return copy


def analyze(unit: Path, folder: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze OPTIONS... UNIT` on a copy of UNIT made in `folder` that names the
    purgecache installed here."""
    command = [require_tool("systemd-analyze"), *options, str(with_install_path(unit, folder))]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("name", ["purgecache.service", "purgecache-agent.service"])
def test_units_pass_systemd_analyze_verify(name: str, tmp_path: Path) -> None:
    """systemd finds nothing wrong in the unit: no unknown key, no bad value, no missing
    command."""
    done = analyze(UNITS / name, tmp_path, "verify", "--man=no", "--generators=no")
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "")


@pytest.mark.parametrize(
    ("name", "at_most"), [("purgecache.service", 2.0), ("purgecache-agent.service", 3.0)]
)
def test_units_are_hardened(name: str, at_most: float, tmp_path: Path) -> None:
    """systemd's own security review rates each unit's exposure "OK" or better (the service
    has no privileges and writes only its state directory)."""
    done = analyze(UNITS / name, tmp_path, "security", "--offline=true", "--no-pager")
    found = re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout + done.stderr)
    assert found, done.stdout + done.stderr
    assert float(found[1]) <= at_most, done.stdout


def test_service_unit_runs_as_a_user_in_its_state_directory() -> None:
    """The unit keeps its data in the state directory systemd makes for the service user, and
    reload is SIGHUP."""
    entries = dict(service_entries(UNITS / "purgecache.service"))
    assert entries["User"] == "purgecache"
    assert entries["StateDirectory"] == "purgecache"
    assert entries["ProtectSystem"] == "strict"
    assert entries["ExecReload"] == "/bin/kill -HUP $MAINPID"
    sysusers = (UNITS / "purgecache.sysusers").read_text()
    assert re.search(r"^u purgecache - .* /var/lib/purgecache ", sysusers, re.MULTILINE)


def test_sysusers_file_is_valid(tmp_path: Path) -> None:
    """systemd-sysusers would create the service user from purgecache.sysusers (dry run in an
    empty root: nothing is written)."""
    sysusers = require_tool("systemd-sysusers")
    done = subprocess.run(
        [sysusers, f"--root={tmp_path}", "--dry-run", str(UNITS / "purgecache.sysusers")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Creating user 'purgecache'" in done.stderr + done.stdout


def unit_environment(state_dir: Path, port: int) -> dict[str, str]:
    """The environment the unit gives `serve` (its Environment= lines; EnvironmentFile= is
    optional and absent), with the state directory and port moved for the test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PURGECACHE_")}
    for key, value in service_entries(UNITS / "purgecache.service"):
        if key == "Environment":
            env.update(item.split("=", 1) for item in shlex.split(value))  # type: ignore[misc]
    assert env["PURGECACHE_DATA_DIR"] == "/var/lib/purgecache"
    env["PURGECACHE_DATA_DIR"] = str(state_dir)
    env["PURGECACHE_PORT"] = str(port)
    return env


def unit_command(key: str, main_pid: int | None = None) -> list[str]:
    """ExecStart or ExecReload as systemd would run it ($MAINPID filled in)."""
    value = dict(service_entries(UNITS / "purgecache.service"))[key]
    value = value.replace(INSTALLED, installed_purgecache())
    if main_pid is not None:
        value = value.replace("$MAINPID", str(main_pid))
    return shlex.split(value)


def test_exec_reload_reloads_the_clients_of_a_running_serve(tmp_path: Path) -> None:
    """The unit's ExecStart and environment start `serve` on a fresh state directory (admin
    credential created there); a client added to its clients file works after the unit's
    ExecReload, without a restart."""
    state_dir, port = tmp_path / "var-lib-purgecache", free_port()
    state_dir.mkdir(mode=0o700)
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            unit_command("ExecStart"),
            env=unit_environment(state_dir, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    live = LiveServer(port, state_dir, process, log_path)
    try:
        wait_until_serving(live)
        clients = state_dir / "clients.toml"
        assert clients.stat().st_mode & 0o777 == 0o600
        new_client = ("deployer", "deployer-token-0123456789abcdef")
        purge = f"{live.api}/purge-cache/proj-a%2Flinux"
        body = {"cacheName": "checkouts"}
        assert httpx.post(purge, json=body, auth=HawkAuth(*new_client)).status_code == 401
        with clients.open("a") as handle:
            handle.write(
                f'\n[[clients]]\nclient_id = "{new_client[0]}"\n'
                f'access_token = "{new_client[1]}"\nscopes = ["purge-cache:proj-a/*"]\n'
            )
        reload = subprocess.run(unit_command("ExecReload", process.pid), timeout=30)
        assert reload.returncode == 0
        deadline = time.monotonic() + 20
        status = 0
        while time.monotonic() < deadline:
            status = httpx.post(purge, json=body, auth=HawkAuth(*new_client)).status_code
            if status == 204:
                break
            time.sleep(0.2)
        assert status == 204, live.log_text()
        assert '"event":"clients-reloaded"' in live.log_text().replace(" ", "")
        assert process.poll() is None
    finally:
        assert live.stop() == 0

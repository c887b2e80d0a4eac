"""What the deployment tests need from the machine: Debian programs (installed in CI by
scripts/setup-deploy.sh) and root. Locally a missing one skips the test; in CI ($CI set) it
fails, so CI never passes without having run them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SETUP_HINT = "run scripts/setup-deploy.sh (as root)"


def _missing(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must run every deployment test: {SETUP_HINT})")
    pytest.skip(f"{message}: {SETUP_HINT}")


def require_tool(name: str, *, under: tuple[str, ...] = ()) -> str:
    """The path of program `name` (on PATH or in one of `under`), else skip (locally) or fail."""
    found = shutil.which(name, path=os.pathsep.join([*under, os.environ.get("PATH", "")]))
    if found is None:
        _missing(f"{name} is not installed")
    assert found is not None
    return found


def require_root() -> None:
    """Skip (locally) or fail (in CI) unless running as root."""
    if os.geteuid() != 0:
        _missing("this test needs root")


def installed_purgecache() -> str:
    """The `purgecache` command of the environment running the tests."""
    return str(Path(sys.executable).parent / "purgecache")


CLIENT_ENVS = Path(os.environ.get("PURGECACHE_CLIENT_ENVS", REPO / ".ci-work" / "clients"))
TC_SCENARIO = REPO / "tests" / "clients" / "tc_scenario.py"


def official_client(
    scenario: str,
    arg: object,
    root_url: str,
    credentials: tuple[str, str],
    extra_env: dict[str, str] | None = None,
) -> Any:
    """Run a scenario of tests/clients/tc_scenario.py in the official Python client
    `taskcluster` 113.x (scripts/setup-client-envs.sh); return what it printed."""
    python = CLIENT_ENVS / "tc113" / "bin" / "python"
    if not (CLIENT_ENVS / "tc113" / ".ready").is_file():
        _missing(f"the official client environment {python.parent.parent} is not ready")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKCLUSTER_", "TC_"))}
    env |= {"TC_ROOT_URL": root_url, "TC_CLIENT_ID": credentials[0]}
    env |= {"TC_ACCESS_TOKEN": credentials[1], **(extra_env or {})}
    done = subprocess.run(
        [str(python), str(TC_SCENARIO), scenario, json.dumps(arg)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def throwaway_certificate(folder: Path, *names: str) -> tuple[Path, Path]:
    """A self-signed certificate (and its key) for `names` (DNS names or IP addresses), valid
    for a day; its certificate is also the CA bundle clients are given."""
    openssl = require_tool("openssl")
    cert, key = folder / "cert.pem", folder / "key.pem"
    alt = ",".join(f"IP:{n}" if n.replace(".", "").isdigit() else f"DNS:{n}" for n in names)
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", f"/CN={names[0]}", "-addext",
         f"subjectAltName={alt}", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key

"""Bring in what the harness needs and the machine may lack: nginx and wrk (Debian), psycopg
for PostgreSQL and py-spy for profiles (pip).

apt-get update runs only when a package has no install candidate yet. Services that Debian's
nginx package would start are held back with a temporary policy-rc.d, so installing leaves no
system nginx running on port 80.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

DEBIAN_TOOLS = {"nginx": "nginx", "wrk": "wrk"}  # binary -> Debian package
POLICY_RC = Path("/usr/sbin/policy-rc.d")
APT_LOCK_WAIT = ["-o", "DPkg::Lock::Timeout=600"]


class InstallError(RuntimeError):
    """A tool is missing and cannot be installed here."""


def find_binary(name: str) -> str | None:
    """The path of a binary, looking in the sbin directories too (nginx lives in /usr/sbin)."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return shutil.which(name, path=path)


def _has_candidate(package: str) -> bool:
    result = subprocess.run(
        ["apt-cache", "policy", package], capture_output=True, text=True, check=False
    )
    return "Candidate:" in result.stdout and "Candidate: (none)" not in result.stdout


def _apt(*args: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"[install] apt-get {' '.join(args)}", flush=True)
    subprocess.run(["apt-get", *APT_LOCK_WAIT, *args], check=True, env=env, timeout=1800)


def _install_debian(packages: list[str]) -> None:
    if os.geteuid() != 0:
        raise InstallError(
            f"missing {', '.join(packages)}: run `sudo apt-get install {' '.join(packages)}`"
        )
    if shutil.which("apt-get") is None:
        raise InstallError(f"missing {', '.join(packages)} and no apt-get to install them")
    if not all(_has_candidate(p) for p in packages):
        _apt("update", "-qq")
    created_policy = not POLICY_RC.exists()
    if created_policy:  # keep the package from starting a system nginx
        POLICY_RC.write_text("#!/bin/sh\nexit 101\n")
        POLICY_RC.chmod(0o755)
    try:
        _apt("install", "-y", "-qq", "--no-install-recommends", *packages)
    finally:
        if created_policy:
            POLICY_RC.unlink(missing_ok=True)


def ensure_debian_tools() -> dict[str, str]:
    """Paths of nginx and wrk, installing the missing ones with apt-get."""
    missing = [pkg for binary, pkg in DEBIAN_TOOLS.items() if find_binary(binary) is None]
    if missing:
        _install_debian(missing)
    paths = {binary: find_binary(binary) for binary in DEBIAN_TOOLS}
    absent = [binary for binary, path in paths.items() if path is None]
    if absent:
        raise InstallError(f"still missing after installing: {', '.join(absent)}")
    return {binary: str(path) for binary, path in paths.items()}


def ensure_py_spy(tools_venv: Path) -> str:
    """py-spy, from PATH or installed with pip into the harness's own tools venv."""
    found = shutil.which("py-spy") or (
        str(tools_venv / "bin" / "py-spy") if (tools_venv / "bin" / "py-spy").exists() else None
    )
    if found:
        return found
    print(f"[install] py-spy into {tools_venv}", flush=True)
    if not (tools_venv / "bin" / "pip").exists():
        subprocess.run([sys.executable, "-m", "venv", str(tools_venv)], check=True)
    pip = [str(tools_venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "py-spy"], check=True, timeout=900)
    return str(tools_venv / "bin" / "py-spy")


def ensure_postgres_driver(repo: Path) -> None:
    """psycopg and its pool in this venv: the project's `postgres` extra if it declares one."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401

        return
    except ImportError:
        pass
    import tomllib

    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    wanted = project.get("optional-dependencies", {}).get("postgres") or [
        "psycopg[binary]>=3.1",
        "psycopg-pool>=3.2",
    ]
    print(f"[install] {' '.join(wanted)} into {sys.prefix}", flush=True)
    pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, *wanted], check=True, timeout=900)

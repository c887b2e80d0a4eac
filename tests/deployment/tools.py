"""What the deployment tests need from the machine: Debian programs (installed in CI by
scripts/setup-deploy.sh) and root. Locally a missing one skips the test; in CI ($CI set) it
fails, so CI never passes without having run them."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

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

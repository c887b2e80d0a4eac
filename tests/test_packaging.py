"""Release packaging: the license shipped, and the version written in one place."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_the_license_file_is_the_mpl_2_0_that_pyproject_declares() -> None:
    """LICENSE holds the whole MPL-2.0 text (pyproject says MPL-2.0 and ships LICENSE)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]
    text = (REPO / "LICENSE").read_text("utf-8")
    assert project["license"] == "MPL-2.0" and project["license-files"] == ["LICENSE"]
    assert text.startswith("Mozilla Public License Version 2.0\n")
    assert "10.4. Distributing Source Code Form that is Incompatible With Secondary" in text
    assert text.rstrip().endswith("defined by the Mozilla Public License, v. 2.0.")


def test_the_installed_version_is_the_one_pyproject_declares() -> None:
    """`purgecache --version` prints pyproject's version: no second copy to fall behind."""
    declared = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]["version"]
    shown = subprocess.run(
        [sys.executable, "-m", "purgecache", "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shown.split()[-1] == declared


USER_CODE = """\
from purgecache.client import AsyncPurgeCache, PurgeCache


def nightly(client: PurgeCache) -> int:
    client.purge_cache("proj-a/linux", "checkouts", reason="bad object dir")
    return len(client.purge_requests("proj-a/linux").requests)


async def wrong(client: AsyncPurgeCache) -> str:
    await client.purge_cache("proj-a/linux", cache_name=7)
    return await client.purge_requests("proj-a/linux")
"""


def test_the_installed_client_carries_its_types_to_the_users_type_checker(
    tmp_path: Path,
) -> None:
    """The package ships `py.typed`, so mypy checks a user's calls against the client's
    signatures: the right ones pass, a wrong argument and a wrong return type are errors
    (without the marker mypy skips the package and reports nothing but its absence)."""
    pytest.importorskip("mypy")
    (tmp_path / "user.py").write_text(USER_CODE, "utf-8")
    options = ["--config-file", "", "--no-incremental", "--strict", "--no-error-summary"]
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", *options, "--hide-error-context", "user.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    errors = [line for line in checked.stdout.splitlines() if ": error: " in line]
    assert [error.split(": error: ")[0] for error in errors] == ["user.py:10", "user.py:11"], (
        checked.stdout + checked.stderr
    )
    assert errors[0].endswith("[arg-type]") and '"cache_name"' in errors[0] and '"int"' in errors[0]
    assert errors[1].endswith("[return-value]") and '"str"' in errors[1]

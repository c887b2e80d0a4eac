"""Release packaging: the license shipped, and the version written in one place."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

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

"""Every example in README.md and docs/ runs, against a live server, as a new user would run it.

Fenced `sh`/`console` and `python` blocks run, in the order they appear, unless the line before
the fence is `<!-- not-run: reason -->`. Each document gets a fresh home directory and a fresh
`purgecache serve` started as the README's quick start starts it (default data directory under
that home, no flags but the port). The documents under docs/ start from the README's first
steps, with `TASKCLUSTER_ROOT_URL`, `TASKCLUSTER_CLIENT_ID` and `TASKCLUSTER_ACCESS_TOKEN` set
to that server and its admin credential; README.md starts from nothing.

The reader's terminal starts in `~/purgecache`, a copy of this checkout (as a clone has it, with
the working tree's edits) whose `.venv` is the environment under test.
Within a document, shell blocks share their working directory and exported variables (as one
terminal would); a `console` block runs its `$ ` lines (its other lines are output, unchecked).
A `python` block runs in a fresh interpreter with that environment: the purgecache venv's, or
the official Taskcluster client's (`taskcluster` 113.x) when it imports `taskcluster`. The URL
`http://127.0.0.1:8080` (and `https://tc.example.com`) becomes the test server's.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import LiveServer, free_port, wait_until_serving

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUN = {"sh": "shell", "bash": "shell", "console": "console", "python": "python"}
FENCE = re.compile(r"^```(\S*)\s*$")
NOT_RUN = re.compile(r"^<!-- not-run: (\S.*?) -->$")
CLIENT_ENVS = Path(os.environ.get("PURGECACHE_CLIENT_ENVS", REPO / ".ci-work" / "clients"))
OFFICIAL_PYTHON = CLIENT_ENVS / "tc113" / "bin" / "python"
BLOCK_TIMEOUT = 120


@dataclass(frozen=True)
class Block:
    """One fenced code block of a document."""

    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    not_run: str | None  # the reason, when marked

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def blocks(path: Path) -> Iterator[Block]:
    """The fenced blocks of a Markdown file, with their `not-run` reasons."""
    lines = path.read_text("utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        previous = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        reason = NOT_RUN.match(previous.strip())
        code = "\n".join(lines[index + 1 : end]) + "\n"
        yield Block(path, index + 1, opening[1], code, reason[1] if reason else None)
        index = end + 1


def console_commands(code: str) -> str:
    """The commands of a `console` block: its `$ ` lines (with `\\` continuations)."""
    commands, continuing = [], False
    for line in code.splitlines():
        if line.startswith("$ ") or continuing:
            commands.append(line[2:] if line.startswith("$ ") and not continuing else line)
            continuing = line.endswith("\\")
    return "\n".join(commands) + "\n"


class Terminal:
    """What a reader's terminal keeps between blocks: working directory and variables."""

    def __init__(self, home: Path, server: LiveServer) -> None:
        self.cwd = home / "purgecache"
        copy_checkout(self.cwd)
        self.state = home / ".terminal-state"
        self.server = server
        keep = {"LANG", "LC_ALL", "TZ", "PGHOST"}
        self.env = {key: value for key, value in os.environ.items() if key in keep}
        venv_bin = str(Path(sys.executable).parent)
        self.env |= {"HOME": str(home), "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin"}

    def localized(self, code: str) -> str:
        root = self.server.root_url
        return code.replace("http://127.0.0.1:8080", root).replace("https://tc.example.com", root)

    def run(self, block: Block) -> subprocess.CompletedProcess[str]:
        code = self.localized(block.code)
        if RUN[block.language] == "python":
            return self._python(code)
        if RUN[block.language] == "console":
            code = console_commands(code)
        return self._shell(code)

    def _shell(self, code: str) -> subprocess.CompletedProcess[str]:
        script = f"set -eo pipefail\n{code}\n{{ pwd; env -0; }} > {self.state}\n"
        result = self._spawn(["bash", "-c", script])
        if result.returncode == 0:
            cwd, _, environment = self.state.read_text().partition("\n")
            self.cwd = Path(cwd)
            pairs = (item.partition("=") for item in environment.split("\0") if item)
            self.env = {key: value for key, _, value in pairs if not key.startswith("BASH_")}
        return result

    def _python(self, code: str) -> subprocess.CompletedProcess[str]:
        python = sys.executable
        if re.search(r"^\s*(import|from) taskcluster\b", code, re.MULTILINE):
            python = str(official_python())
        return self._spawn([python, "-c", code])

    def _spawn(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        """Run to the end; then end whatever it left in the background (`serve &`)."""
        out, err = self.state.with_suffix(".out"), self.state.with_suffix(".err")
        with out.open("w") as stdout, err.open("w") as stderr:
            process = subprocess.Popen(
                command, cwd=self.cwd, env=self.env, stdout=stdout, stderr=stderr,
                start_new_session=True,
            )  # fmt: skip
            try:
                process.wait(BLOCK_TIMEOUT)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        return subprocess.CompletedProcess(
            command, process.returncode, out.read_text(), err.read_text()
        )


def copy_checkout(target: Path) -> None:
    """The files of this checkout as a fresh clone has them (tracked and new, not ignored),
    with the working tree's edits, and `.venv` as the environment the tests run in."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(Path(sys.executable).parent.parent)


def official_python() -> Path:
    """The official client's interpreter (made by scripts/setup-client-envs.sh)."""
    if not OFFICIAL_PYTHON.exists():
        message = f"{OFFICIAL_PYTHON} missing: run scripts/setup-client-envs.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return OFFICIAL_PYTHON


def start_quickstart_server(home: Path) -> LiveServer:
    """`purgecache serve` as the quick start runs it, on a free port, under `home`."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PURGECACHE_")}
    env |= {"HOME": str(home)}
    env.pop("XDG_DATA_HOME", None)
    log_path = home / "serve.log"
    args = [sys.executable, "-m", "purgecache", "serve", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    server = LiveServer(port, home / ".local/share/purgecache", process, log_path, args)
    wait_until_serving(server)
    return server


def first_steps_environment(server: LiveServer) -> dict[str, str]:
    """The variables the README's first steps export: this server and its admin credential."""
    clients = tomllib.loads((server.data_dir / "clients.toml").read_text("utf-8"))
    (admin,) = clients["clients"]
    return {
        "TASKCLUSTER_ROOT_URL": server.root_url,
        "TASKCLUSTER_CLIENT_ID": admin["client_id"],
        "TASKCLUSTER_ACCESS_TOKEN": admin["access_token"],
    }


@pytest.mark.parametrize("path", DOCUMENTS, ids=[str(p.relative_to(REPO)) for p in DOCUMENTS])
def test_every_example_runs(path: Path, tmp_path: Path) -> None:
    """Each shell, console and Python example of the document succeeds, in order."""
    runnable = [b for b in blocks(path) if b.language in RUN and b.not_run is None]
    if not runnable:
        return
    server = start_quickstart_server(tmp_path)
    try:
        terminal = Terminal(tmp_path, server)
        if path.name != "README.md" or path.parent != REPO:
            terminal.env |= first_steps_environment(server)
        for block in runnable:
            result = terminal.run(block)
            assert result.returncode == 0, (
                f"{block.where} failed ({result.returncode}):\n{block.code}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
    finally:
        server.stop()


def test_every_block_is_run_or_says_why_not() -> None:
    """A runnable-looking block in another spelling would silently escape the run."""
    for path in DOCUMENTS:
        for block in blocks(path):
            assert block.language not in {"shell", "py", "python3", "zsh"}, block.where
            if block.not_run is not None:
                assert block.language in RUN, f"{block.where}: not-run on a block never run"


def test_the_not_run_marker_is_recognised(tmp_path: Path) -> None:
    """The parser reads fences, languages, reasons and console commands as documented."""
    sample = tmp_path / "sample.md"
    sample.write_text(
        "<!-- not-run: needs a cluster -->\n```sh\nrm -rf /\n```\n\n"
        "```console\n$ echo a \\\n  b\nout\n```\n"
    )
    first, second = blocks(sample)
    assert (first.language, first.not_run, first.line) == ("sh", "needs a cluster", 2)
    assert (second.not_run, console_commands(second.code)) == (None, "echo a \\\n  b\n")


def test_the_docs_index_lists_every_page() -> None:
    """docs/README.md links each page of docs/, and the README links the index."""
    index = (REPO / "docs" / "README.md").read_text("utf-8")
    pages = {p.name for p in (REPO / "docs").glob("*.md")} - {"README.md"}
    assert pages <= set(re.findall(r"\]\(([\w-]+\.md)\)", index))
    assert "(docs/README.md)" in (REPO / "README.md").read_text("utf-8")

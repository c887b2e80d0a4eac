"""A simulated worker: its own cache root, driving the real `purgecache agent` CLI in
subprocesses, configured by TASKCLUSTER_* variables as a worker's hooks would be."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from agent.conftest import agent_command, clean_environ
from purgecache.agent.state import load_state

from conftest import READER

Result = subprocess.CompletedProcess[str]


@dataclass
class Worker:
    """One worker of `pool` with the cache root `root`, talking to `root_url` with
    `credentials`, its agent configured by `settings` (PURGECACHE_AGENT_* variables)."""

    root: Path
    pool: str
    root_url: str
    credentials: tuple[str, str] = READER
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def environ(self) -> dict[str, str]:
        return clean_environ(
            TASKCLUSTER_ROOT_URL=self.root_url,
            TASKCLUSTER_CLIENT_ID=self.credentials[0],
            TASKCLUSTER_ACCESS_TOKEN=self.credentials[1],
            **self.settings,
        )

    def command(self, *args: str) -> list[str]:
        return agent_command(*args, "--cache-root", str(self.root))

    def run(self, *args: str, environ: dict[str, str] | None = None) -> Result:
        """`purgecache agent ARGS --cache-root ROOT`, in this worker's environment unless
        `environ` is given."""
        return subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            env=self.environ if environ is None else environ,
            timeout=60,
        )

    def mount(self, cache_name: str) -> Path:
        """Mount for a task: the path is the last line of stdout."""
        result = self.run("mount", cache_name)
        assert result.returncode == 0, result.stderr
        return Path(result.stdout.splitlines()[-1])

    def release(self, path: Path) -> Result:
        result = self.run("release", str(path))
        assert result.returncode == 0, result.stderr
        return result

    def free_instance(self, cache_name: str, content: str = "built") -> Path:
        """A cache instance a finished task left behind."""
        path = self.mount(cache_name)
        (path / "content").write_text(content)
        self.release(path)
        return path

    def sync(self, *extra: str, environ: dict[str, str] | None = None) -> Result:
        """`purgecache agent sync --pool POOL ...` (the pre-task hook)."""
        return self.run("sync", "--pool", self.pool, *extra, environ=environ)

    @property
    def daemon_log(self) -> Path:
        return self.root.with_name(f"{self.root.name}-daemon.log")

    def daemon(self, *extra: str) -> subprocess.Popen[bytes]:
        """`purgecache agent run` in the background, its log in `daemon_log`."""
        with self.daemon_log.open("ab") as log:
            return subprocess.Popen(
                self.command("run", "--pool", self.pool, *extra),
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=self.environ,
            )

    @contextlib.contextmanager
    def running_daemon(self, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
        """`daemon(...)` for the block; then SIGTERM, which must stop it with status 0 within
        10 s (killed otherwise)."""
        daemon = self.daemon(*extra)
        try:
            yield daemon
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(10) == 0
        finally:
            if daemon.poll() is None:
                daemon.kill()

    def watermark(self) -> int | None:
        return load_state(self.root / "state.json").watermarks.get(self.pool)

    def outlast_clock_error(self) -> None:
        """Wait until an instance mounted now is dated after whatever the service stamped
        before the call: twice the error of the agent's service clock (measured from a
        whole-second Date: half a second plus half the round trip, more on a slow sync)."""
        anchor = load_state(self.root / "state.json").anchor
        assert anchor is not None, "no sync has measured the service's clock yet"
        time.sleep(2 * anchor.error_ms / 1000 + 0.1)

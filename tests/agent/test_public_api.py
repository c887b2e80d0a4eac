"""The agent's public surface, and that a worker needs only the base install for it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import purgecache.agent

SERVER_ONLY = ("granian", "orjson", "jsonschema", "psycopg", "psycopg_pool", "prometheus_client")


def test_all_is_pinned() -> None:
    """`purgecache.agent.__all__` changes only on purpose."""
    assert purgecache.agent.__all__ == [
        "CacheRegistry",
        "Problem",
        "RegistryError",
        "Released",
        "SyncReport",
        "sync_once",
    ]


WITHOUT_SERVER = textwrap.dedent(
    f"""
    import sys

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {SERVER_ONLY!r}:
                raise ImportError(f"{{name}} is a server dependency")
            return None

    sys.meta_path.insert(0, Block())
    import purgecache.cli
    assert "httpx" not in sys.modules, "the agent commands load the client on demand"
    import purgecache.agent.daemon, purgecache.agent.fetch
    for command in (["agent", "mount", "c", "--cache-root", sys.argv[1]], ["agent", "--help"]):
        try:
            purgecache.cli.main(command)
        except SystemExit as done:
            assert done.code == 0, done.code
    """
)


def test_agent_works_without_server_dependencies(tmp_path: Path) -> None:
    """With the server's packages unimportable, the agent imports and mounts a cache."""
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_SERVER, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith(str(tmp_path))

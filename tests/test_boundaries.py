"""What a worker's install loads: the client, the agent and the client CLI stay off the server."""

from __future__ import annotations

import json
import subprocess
import sys

# Every module of these packages, and these modules, as a worker would use them.
WORKER_PACKAGES = ("purgecache.client", "purgecache.agent")
WORKER_MODULES = ("purgecache", "purgecache.cli_client")
SERVER_PACKAGES = ("purgecache.auth", "purgecache.api", "purgecache.storage", "purgecache.server")
SERVER_DEPENDENCIES = ("granian", "orjson", "psycopg", "jsonschema", "prometheus_client")

IMPORT_EVERYTHING = f"""
import importlib, json, pkgutil, sys
for name in {WORKER_MODULES!r}:
    importlib.import_module(name)
for name in {WORKER_PACKAGES!r}:
    package = importlib.import_module(name)
    for module in pkgutil.walk_packages(package.__path__, name + "."):
        if not module.name.endswith(".__main__"):
            importlib.import_module(module.name)
print(json.dumps(sorted(sys.modules)))
"""


def _loaded_by_worker_code() -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    modules: list[str] = json.loads(result.stdout)
    return modules


def test_worker_code_imports_nothing_of_the_server() -> None:
    """Importing every client and agent module and the client CLI loads no server package and
    none of the server extra's dependencies (the signing arithmetic is `purgecache.hawk_mac`)."""
    loaded = _loaded_by_worker_code()
    assert "purgecache.agent.fetch" in loaded  # the walk really reached the agent's modules
    forbidden = SERVER_PACKAGES + SERVER_DEPENDENCIES
    offenders = [
        name for name in loaded if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]
    assert offenders == []

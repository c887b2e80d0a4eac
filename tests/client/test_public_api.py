"""The public surface: what `purgecache.client` exports, and that a worker can import the
client and the CLI without any of the server's dependencies."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import purgecache
import purgecache.client

PUBLIC_API = [
    "ApiError",
    "AsyncPurgeCache",
    "AuthenticationFailed",
    "CacheInventory",
    "CacheReceipt",
    "CancelledSelector",
    "ConfigurationError",
    "ConnectionFailed",
    "Credentials",
    "ExtensionUnavailable",
    "GetEndpoint",
    "HawkAuth",
    "InsufficientScopes",
    "InvalidResponse",
    "OpenAllPurgeRequestsList",
    "OpenPurgeRequestList",
    "Ping",
    "PoolCache",
    "PoolCaches",
    "PoolSelector",
    "PoolSelectors",
    "PurgeCache",
    "PurgeCacheError",
    "PurgeCacheRequest",
    "PurgeCacheRequestsEntry",
    "PurgeConvergence",
    "PurgeEvent",
    "PurgeHistory",
    "PurgeStatus",
    "RequestRejected",
    "RequestTimedOut",
    "Retries",
    "SelectorPair",
    "SelectorPurge",
    "ServerError",
    "Version",
    "create_temporary_credentials",
    "split_worker_pool_id",
    "worker_pool_id",
]

SERVER_ONLY = ("granian", "orjson", "jsonschema", "psycopg", "psycopg_pool")


def test_all_is_pinned() -> None:
    """`purgecache.client.__all__` changes only on purpose, and every name exists."""
    assert purgecache.client.__all__ == PUBLIC_API
    for name in PUBLIC_API:
        assert getattr(purgecache.client, name) is not None


def test_package_reexports_the_clients() -> None:
    """`purgecache.PurgeCache` and `purgecache.AsyncPurgeCache` are the client classes."""
    assert purgecache.PurgeCache is purgecache.client.PurgeCache
    assert purgecache.AsyncPurgeCache is purgecache.client.AsyncPurgeCache
    assert set(purgecache.__all__) == {"PurgeCache", "AsyncPurgeCache"}


def test_errors_form_one_tree() -> None:
    """Every exception the client raises is a PurgeCacheError; API errors are ApiErrors."""
    client = purgecache.client
    for name in PUBLIC_API:
        value = getattr(client, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, client.PurgeCacheError), name
    for kind in ("AuthenticationFailed", "InsufficientScopes", "RequestRejected", "ServerError"):
        assert issubclass(getattr(client, kind), client.ApiError)
    assert issubclass(client.RequestTimedOut, client.ConnectionFailed)
    assert issubclass(client.ConfigurationError, ValueError)


BLOCKED_IMPORT = textwrap.dedent(
    f"""
    import sys

    BLOCKED = {SERVER_ONLY!r}

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{{name}} is a server dependency")
            return None

    sys.meta_path.insert(0, Block())

    import purgecache
    import purgecache.cli
    assert "httpx" not in sys.modules, "the package and the CLI load the client on demand"
    from purgecache import AsyncPurgeCache, PurgeCache
    import purgecache.client

    client = PurgeCache("http://127.0.0.1:9", purgecache.client.Credentials("me", "t"))
    url = client.signed_url("purge_requests", "proj-a/linux", expires_in=60)
    assert "bewit=" in url
    try:
        purgecache.cli.main(["purge", "--help"])
    except SystemExit as done:
        assert done.code == 0
    loaded = sorted(n for n in sys.modules if n.split(".")[0] in BLOCKED)
    assert not loaded, loaded
    print("OK")
    """
)


def test_cli_spells_every_get_endpoint() -> None:
    """`purgecache signed-url` offers exactly the client's GET endpoints."""
    from typing import get_args

    from purgecache.cli_client import SIGNED_URL_ENDPOINTS

    names = {name.replace("-", "_") for name in SIGNED_URL_ENDPOINTS}
    assert names == set(get_args(purgecache.client.GetEndpoint))


def test_client_and_cli_import_without_server_dependencies() -> None:
    """With granian, orjson, jsonschema and psycopg unimportable the client and CLI work."""
    result = subprocess.run(
        [sys.executable, "-c", BLOCKED_IMPORT], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("OK")

"""purgecache: a Taskcluster-compatible purge-cache service, client and worker agent."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from purgecache.client import AsyncPurgeCache, PurgeCache

__all__ = ["AsyncPurgeCache", "PurgeCache"]


def __getattr__(name: str) -> object:
    # Lazy, so that `import purgecache` (the server, the CLI) does not load httpx.
    if name in __all__:
        from purgecache import client

        return getattr(client, name)
    raise AttributeError(f"module 'purgecache' has no attribute {name!r}")

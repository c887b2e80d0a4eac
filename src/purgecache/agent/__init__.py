"""The worker-side agent: a cache registry on the worker's disk and the purge loop.

    from purgecache.agent import CacheRegistry, sync_once
    from purgecache.agent.fetch import ServiceFetcher      # talks to the service (httpx)

    registry = CacheRegistry(Path("/var/cache/tc"))
    data = registry.mount("checkouts")                     # give `data` to the task ...
    registry.release(data)                                 # ... and take it back
    with ServiceFetcher() as fetch:                        # TASKCLUSTER_* variables
        report = sync_once(registry, fetch, "proj-a/linux")

Needs only the base install (click and httpx); see docs/agent.md.
"""

from purgecache.agent.registry import CacheRegistry, RegistryError, Released
from purgecache.agent.sync import SyncReport, sync_once
from purgecache.agent.trash import Problem

__all__ = ["CacheRegistry", "Problem", "RegistryError", "Released", "SyncReport", "sync_once"]

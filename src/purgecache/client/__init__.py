"""Python client of the Taskcluster purge-cache service, blocking and asyncio.

Needs only httpx: a worker can install the client without the server's dependencies.

    from purgecache.client import PurgeCache

    with PurgeCache.from_env() as pc:
        pc.purge_cache("proj-a/linux", "checkouts")
        print(pc.purge_requests("proj-a/linux").requests)

See docs/client.md.
"""

from purgecache.client._async import AsyncPurgeCache
from purgecache.client._calls import GetEndpoint
from purgecache.client._credentials import Credentials, create_temporary_credentials
from purgecache.client._errors import (
    ApiError,
    AuthenticationFailed,
    ConfigurationError,
    ConnectionFailed,
    ExtensionUnavailable,
    InsufficientScopes,
    InvalidResponse,
    PurgeCacheError,
    RequestRejected,
    RequestTimedOut,
    ServerError,
)
from purgecache.client._models import (
    CacheInventory,
    CacheReceipt,
    CancelledSelector,
    OpenAllPurgeRequestsList,
    OpenPurgeRequestList,
    Ping,
    PoolCache,
    PoolCaches,
    PoolSelector,
    PoolSelectors,
    PurgeCacheRequest,
    PurgeCacheRequestsEntry,
    PurgeConvergence,
    PurgeEvent,
    PurgeHistory,
    PurgeStatus,
    SelectorPair,
    SelectorPurge,
    Version,
    split_worker_pool_id,
    worker_pool_id,
)
from purgecache.client._retries import Retries
from purgecache.client._signing import HawkAuth
from purgecache.client._sync import PurgeCache

__all__ = [
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

"""The API reference (`api.json`) and JSON schemas, in Taskcluster's reference format.

The same schema documents are served to clients and used to validate request bodies.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

SERVICE = "purge-cache"
API_VERSION = "v1"

_POOL_SCOPE = "purge-cache:<workerPoolId>:<cacheName>"

ENTRIES: tuple[dict[str, Any], ...] = (
    {
        "name": "ping",
        "method": "get",
        "route": "/ping",
        "args": [],
        "query": [],
        "category": "Monitoring",
        "title": "Ping Server",
        "description": "Respond without doing anything. Used to check the service is alive.",
    },
    {
        "name": "lbheartbeat",
        "method": "get",
        "route": "/__lbheartbeat__",
        "args": [],
        "query": [],
        "category": "Monitoring",
        "title": "Load Balancer Heartbeat",
        "description": "Answers 200 as long as the process serves requests.",
    },
    {
        "name": "version",
        "method": "get",
        "route": "/__version__",
        "args": [],
        "query": [],
        "category": "Monitoring",
        "title": "Taskcluster Version",
        "description": "The Dockerflow version object of this deployment.",
    },
    {
        "name": "purgeCache",
        "method": "post",
        "route": "/purge-cache/<workerPoolId>",
        "args": ["workerPoolId"],
        "query": [],
        "scopes": _POOL_SCOPE,
        "input": "v1/purge-cache-request.json#",
        "category": "Purge-Cache Service",
        "title": "Purge Worker Cache",
        "description": (
            "Ask the workers of `workerPoolId` to discard their caches named `cacheName` "
            "created before now. Purging the same cache again moves that time forward."
        ),
    },
    {
        "name": "allPurgeRequests",
        "method": "get",
        "route": "/purge-cache/list",
        "args": [],
        "query": ["continuationToken", "limit"],
        "scopes": "purge-cache:all-purge-requests",
        "output": "v1/all-purge-cache-request-list.json#",
        "category": "Purge-Cache Service",
        "title": "All Open Purge Requests",
        "description": (
            "Every open purge request, ordered by worker pool and cache name, in pages of at "
            "most `limit` (1 to 1000). Pass `continuationToken` back to get the next page; "
            "it is absent on the last page. For administrators, not workers."
        ),
    },
    {
        "name": "purgeRequests",
        "method": "get",
        "route": "/purge-cache/<workerPoolId>",
        "args": ["workerPoolId"],
        "query": ["since"],
        "scopes": "purge-cache:purge-requests::<workerPoolId>",
        "output": "v1/purge-cache-request-list.json#",
        "category": "Purge-Cache Service",
        "title": "Open Purge Requests for a worker pool",
        "description": (
            "The purge requests of one worker pool with `before` at or after `since` (default: "
            "all), ordered by cache name. Workers call this before each task and discard "
            "caches of those names created before `before`."
        ),
    },
    {
        "name": "heartbeat",
        "method": "get",
        "route": "/__heartbeat__",
        "args": [],
        "query": [],
        "category": "Monitoring",
        "title": "Heartbeat",
        "description": "Answers 200 when the database answers, 503 otherwise.",
    },
)

SCHEMA_NAMES = (
    "purge-cache-request.json",
    "purge-cache-requests.json",
    "purge-cache-request-list.json",
    "all-purge-cache-request-list.json",
)


def load_schema(name: str, root_url: str) -> dict[str, Any]:
    """A schema in its served (absolute) form for a deployment at `root_url`."""
    folder = resources.files("purgecache.api") / "schemas" / API_VERSION
    schema: dict[str, Any] = json.loads((folder / name).read_text("utf-8"))
    schema["$schema"] = f"{root_url}/schemas/common/metaschema.json#"
    schema["$id"] = f"{root_url}/schemas/{SERVICE}/{API_VERSION}/{name}#"
    return schema


def api_reference(root_url: str) -> dict[str, Any]:
    """`api.json` in its served (absolute) form."""
    entries = [{"type": "function", "stability": "stable", **entry} for entry in ENTRIES]
    return {
        "$schema": f"{root_url}/schemas/common/api-reference-v0.json#",
        "apiVersion": API_VERSION,
        "serviceName": SERVICE,
        "title": "Purge Cache Service",
        "description": (
            "The purge-cache service lets anyone with the right scopes ask the workers of a "
            "worker pool to throw away a named cache. Workers ask for the open requests of "
            "their pool before each task and delete their copies of those caches created "
            "before the request's `before` time."
        ),
        "entries": entries,
    }


def manifest(root_url: str) -> dict[str, Any]:
    """`references/manifest.json` for this one service."""
    return {
        "$schema": f"{root_url}/schemas/common/manifest-v3.json#",
        "references": [f"{root_url}/references/{SERVICE}/{API_VERSION}/api.json"],
    }


def documents(root_url: str) -> dict[str, bytes]:
    """Every reference document by its path on the server, as JSON bytes."""
    docs: dict[str, Any] = {
        f"/references/{SERVICE}/{API_VERSION}/api.json": api_reference(root_url),
        "/references/manifest.json": manifest(root_url),
    }
    for name in SCHEMA_NAMES:
        docs[f"/schemas/{SERVICE}/{API_VERSION}/{name}"] = load_schema(name, root_url)
    return {path: json.dumps(doc, indent=2).encode() for path, doc in docs.items()}

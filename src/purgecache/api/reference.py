"""The API reference (`api.json`) and JSON schemas, in Taskcluster's reference format.

`api.json` is read off the endpoint table; the same schema documents are served to clients
and used to validate request bodies.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from purgecache.api.endpoints import Endpoint

SERVICE = "purge-cache"
API_VERSION = "v1"

SCHEMA_NAMES = (
    "purge-cache-request.json",
    "purge-cache-requests.json",
    "purge-cache-request-list.json",
    "all-purge-cache-request-list.json",
    "create-purge-request.json",
    "purge-event.json",
    "cancel-purge-request.json",
    "cancelled-purge.json",
    "purge-history.json",
    "worker-sync-report.json",
    "purge-status.json",
    "pool-caches.json",
    "selector.json",
    "create-selector-purge-request.json",
    "selector-purge.json",
    "pool-selectors.json",
    "cancel-selector-purge-request.json",
    "cancelled-selector-purge.json",
)


def load_schema(name: str, root_url: str) -> dict[str, Any]:
    """A schema in its served (absolute) form for a deployment at `root_url`."""
    folder = resources.files("purgecache.api") / "schemas" / API_VERSION
    schema: dict[str, Any] = json.loads((folder / name).read_text("utf-8"))
    schema["$schema"] = f"{root_url}/schemas/common/metaschema.json#"
    schema["$id"] = f"{root_url}/schemas/{SERVICE}/{API_VERSION}/{name}#"
    return schema


def reference_entry(endpoint: Endpoint) -> dict[str, Any]:
    """An endpoint's entry in `api.json`."""
    entry: dict[str, Any] = {
        "type": "function",
        "stability": endpoint.stability,
        "name": endpoint.name,
        "method": endpoint.method.lower(),
        "route": endpoint.route,
        "args": list(endpoint.args),
        "query": list(endpoint.query_names),
    }
    if endpoint.scopes is not None:
        entry["scopes"] = endpoint.scopes
    if endpoint.input is not None:
        entry["input"] = f"{API_VERSION}/{endpoint.input}#"
    if endpoint.output is not None:
        entry["output"] = f"{API_VERSION}/{endpoint.output}#"
    entry["category"] = endpoint.category
    entry["title"] = endpoint.title
    entry["description"] = endpoint.description
    return entry


def api_reference(root_url: str, endpoints: tuple[Endpoint, ...]) -> dict[str, Any]:
    """`api.json` in its served (absolute) form."""
    entries = [reference_entry(endpoint) for endpoint in endpoints]
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


def documents(root_url: str, endpoints: tuple[Endpoint, ...]) -> dict[str, bytes]:
    """Every reference document by its path on the server, as JSON bytes."""
    docs: dict[str, Any] = {
        f"/references/{SERVICE}/{API_VERSION}/api.json": api_reference(root_url, endpoints),
        "/references/manifest.json": manifest(root_url),
    }
    for name in SCHEMA_NAMES:
        docs[f"/schemas/{SERVICE}/{API_VERSION}/{name}"] = load_schema(name, root_url)
    return {path: json.dumps(doc, indent=2).encode() for path, doc in docs.items()}

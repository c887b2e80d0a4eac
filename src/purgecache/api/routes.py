"""The route table under the API base, matched on the raw sub-path."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Call:
    """One API call in progress: which endpoint, its URL parameters, who is calling."""

    name: str
    params: dict[str, str]
    client_id: str | None = None
    param_error: str | None = None


# Fixed routes under the API base: sub-path -> {method: endpoint name}.
_FIXED = {
    "ping": "ping",
    "__lbheartbeat__": "lbheartbeat",
    "__version__": "version",
    "__heartbeat__": "heartbeat",
}
_POOL_PREFIX = "purge-cache/"


def match_route(sub: str) -> tuple[dict[str, str], str | None] | None:
    """Endpoints by method for an API sub-path, and the raw `workerPoolId` if it has one."""
    name = _FIXED.get(sub[:-1] if sub.endswith("/") else sub)
    if name is not None:
        return {"GET": name}, None
    if not sub.startswith(_POOL_PREFIX):
        return None
    raw_pool = sub[len(_POOL_PREFIX) :]
    if raw_pool in ("list", "list/"):
        return {"GET": "allPurgeRequests", "POST": "purgeCache"}, raw_pool
    return {"GET": "purgeRequests", "POST": "purgeCache"}, raw_pool

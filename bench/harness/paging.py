"""allPurgeRequests deep in a big table: find the last page's continuation token by walking."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

from harness.client import ServiceClient
from harness.hawk import Credentials

API = "/api/purge-cache/v1"


def list_target(limit: int, token: str | None = None) -> str:
    """The allPurgeRequests request target."""
    query = f"limit={limit}"
    if token is not None:
        query += f"&continuationToken={quote(token, safe='')}"
    return f"{API}/purge-cache/list?{query}"


def walk_to_last_page(
    port: int, credentials: Credentials, limit: int = 1000, max_pages: int = 5000
) -> tuple[str | None, int, int, float]:
    """Follow continuation tokens from the first page to the last.

    Returns the token that fetches the last page (None if there is one page), how many pages
    and rows were seen, and the seconds the walk took. Tokens are opaque: they are only
    followed, never built.
    """
    client = ServiceClient(port, credentials, timeout=120)
    started = time.perf_counter()
    token: str | None = None
    last_page_token: str | None = None
    pages = rows = 0
    try:
        while pages < max_pages:
            reply = client.request("GET", list_target(limit, token))
            if reply.status != 200:
                raise RuntimeError(f"page {pages + 1}: status {reply.status}: {reply.body[:300]!r}")
            answer = json.loads(reply.body)
            pages, rows = pages + 1, rows + len(answer["requests"])
            last_page_token = token
            token = answer.get("continuationToken")
            if token is None:
                break
        else:
            raise RuntimeError(f"no last page after {max_pages} pages")
    finally:
        client.close()
    return last_page_token, pages, rows, time.perf_counter() - started

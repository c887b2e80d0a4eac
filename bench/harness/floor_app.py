"""The floor: an RSGI app on granian that replays the service's answers and does nothing else.

It answers every path the service was measured on with the very status, headers and body the
service sent (read from the JSON file named by `BENCH_FLOOR_ROUTES`), reading a POST's body
first as any server must. No routing beyond one dict lookup, no parsing, no auth, no log: what
granian itself costs per request on this machine, so the service's ratio to nginx can be read
against the best any Python app on granian could reach here (`harness/floor.py`).
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

Route = tuple[int, list[tuple[str, str]], bytes]


def load_routes(path: str) -> dict[tuple[str, str], Route]:
    """(method, decoded path) -> (status, headers, body), from the file `floor.py` wrote."""
    with open(path, encoding="utf-8") as file:
        entries = json.load(file)
    return {
        (entry["method"], entry["path"]): (
            entry["status"],
            [(name, value) for name, value in entry["headers"]],
            base64.b64decode(entry["body"]),
        )
        for entry in entries
    }


ROUTES = load_routes(os.environ["BENCH_FLOOR_ROUTES"])
NOT_FOUND: Route = (404, [("content-type", "text/plain")], b"not found")


class Floor:
    """The RSGI application granian loads (`harness.floor_app:app`)."""

    def __rsgi_init__(self, loop: Any) -> None:
        pass

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        method = scope.method
        status, headers, body = ROUTES.get((method, scope.path), NOT_FOUND)
        if method == "POST":
            await proto()
        proto.response_bytes(status, headers, body)


app = Floor()

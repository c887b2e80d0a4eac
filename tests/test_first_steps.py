"""What a new user sees first: the URLs `serve` prints answer."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from conftest import LiveServer
from support.commands import json_records


def test_the_urls_serve_prints_answer(server_factory: Callable[..., LiveServer]) -> None:
    """The start-up line names the admin page and `ping`, and both answer 200 in a browser
    (the API base itself is the v1 404, so it is not printed)."""
    live = server_factory()
    (serving,) = [r for r in json_records(live.log_text()) if r.get("event") == "serving"]
    assert serving["admin_page"] == f"{live.root_url}/"
    assert serving["ping"] == f"{live.api}/ping"
    assert "api" not in serving
    for url in (serving["admin_page"], serving["ping"]):
        assert httpx.get(str(url)).status_code == 200

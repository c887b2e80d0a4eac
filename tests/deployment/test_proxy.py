"""deploy/nginx/purgecache.conf in front of a real `serve`: TLS ends at nginx (a throwaway
certificate), and the official Python client signs against the public https URL. A proxy that
drops the client's Host and scheme gets 401 "Bad mac", and the access line says what the
signature was checked against."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import ADMIN, LiveServer, free_port
from deployment.nginx import Nginx, site_config
from deployment.tools import official_client, throwaway_certificate

ServerFactory = Callable[..., LiveServer]
POOL = "proj-a/linux"


@pytest.fixture
def proxied(
    request: pytest.FixtureRequest, server_factory: ServerFactory, tmp_path: Path
) -> Iterator[tuple[LiveServer, str, Path]]:
    """`serve --trust-proxy` behind nginx; the service, its public root URL and the CA file.
    Parametrised indirectly with whether nginx forwards Host and X-Forwarded-*."""
    port = free_port()
    public = f"https://localhost:{port}"
    live = server_factory("--trust-proxy", "--root-url", public)
    cert, key = throwaway_certificate(tmp_path, "localhost", "127.0.0.1")
    site = site_config(
        f"127.0.0.1:{port}", [f"127.0.0.1:{live.port}"], cert, key, forward=request.param
    )
    nginx = Nginx(tmp_path / "nginx", site)
    try:
        nginx.wait_listening("127.0.0.1", port)
        yield live, public, cert
    finally:
        nginx.stop()


def request_lines(
    live: LiveServer, until: Callable[[list[dict[str, Any]]], bool] = bool
) -> list[dict[str, Any]]:
    """The access lines, once `until` holds for them (they are batched for up to 0.1 s)."""
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(x) for x in live.log_text().splitlines() if x.startswith("{")]
        requests = [line for line in lines if line.get("event") == "request"]
        if until(requests) or time.monotonic() > deadline:
            return requests
        time.sleep(0.05)


@pytest.mark.parametrize("proxied", [True], indirect=True)
def test_official_client_signs_against_the_public_https_url(
    proxied: tuple[LiveServer, str, Path],
) -> None:
    """taskcluster 113's purgeCache, purgeRequests and allPurgeRequests work through nginx's
    TLS; the logs show the caller's address from X-Forwarded-For (--trust-proxy)."""
    live, public, cert = proxied
    calls = [
        {"method": "purgeCache", "pool": POOL, "payload": {"cacheName": "checkouts"}},
        {"method": "purgeRequests", "pool": POOL},
        {"method": "allPurgeRequests", "query": {"limit": 10}},
    ]
    seen = official_client("calls", calls, public, ADMIN, {"REQUESTS_CA_BUNDLE": str(cert)})
    assert seen[0] == {"result": None}, seen
    assert [r["cacheName"] for r in seen[1]["result"]["requests"]] == ["checkouts"]
    assert [r["cacheName"] for r in seen[2]["result"]["requests"]] == ["checkouts"]

    ping = httpx.get(
        f"{public}/api/purge-cache/v1/ping",
        verify=ssl.create_default_context(cafile=cert),
        headers={"X-Forwarded-For": "203.0.113.7"},
    )
    assert ping.status_code == 200
    ping_id = ping.headers["x-for-request-id"]
    lines = request_lines(live, lambda lines: any(x["request_id"] == ping_id for x in lines))
    (ping_line,) = (line for line in lines if line["request_id"] == ping_id)
    assert ping_line["client_ip"] == "203.0.113.7"
    assert [line["status"] for line in lines if line["route"] == "purgeCache"] == [204]
    assert not any("hint" in line for line in lines)


@pytest.mark.parametrize("proxied", [False], indirect=True)
def test_a_proxy_that_drops_host_and_scheme_gets_a_hint_in_the_log(
    proxied: tuple[LiveServer, str, Path],
) -> None:
    """Without the Host and X-Forwarded-* lines, the client's signature (for localhost on the
    public port) cannot match: 401 "Bad mac" as upstream answers it, and the access line's
    hint names the host and port the server checked (nginx's default Host: the upstream
    block's name) and the headers it got."""
    live, public, cert = proxied
    calls = [{"method": "purgeCache", "pool": POOL, "payload": {"cacheName": "checkouts"}}]
    seen = official_client("calls", calls, public, ADMIN, {"REQUESTS_CA_BUNDLE": str(cert)})
    error = seen[0]["error"]
    assert (error["status_code"], error["code"]) == (401, "AuthenticationFailed")
    assert "Bad mac" in error["body"]["message"]
    refused = request_lines(live, lambda lines: any(line["status"] == 401 for line in lines))
    (line,) = [line for line in refused if line["status"] == 401]
    hint = str(line["hint"])
    assert "checked against purgecache:80 " in hint, hint  # the upstream block's name
    assert "X-Forwarded-Proto None" in hint and "pass the original Host" in hint, hint

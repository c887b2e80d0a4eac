"""Inside a Taskcluster deployment: one nginx plays the deployment's ingress at one root URL
(TLS, a throwaway certificate). `/api/purge-cache/` goes to `serve --auth-root-url <that root
URL> --trust-proxy` through the `location` block of docs/deploy.md (also serving the
reference and schemas), `/api/auth/` to a fake
Taskcluster auth service that verifies Hawk for clients only it knows. The official Python
client (`taskcluster` 113) with that root URL purges and reads; a client with too few scopes
gets 403 from purgecache naming the scopes the auth service reported; each request costs
exactly one `authenticateHawk` call, made through the ingress."""

from __future__ import annotations

import re
import ssl
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from purgecache.auth.clients import parse_clients

from conftest import LiveServer, free_port
from deployment.nginx import Nginx
from deployment.test_proxy import request_lines
from deployment.tools import REPO, official_client, throwaway_certificate
from support.auth_service import AUTH_PATH, VerifyingAuthService

ServerFactory = Callable[..., LiveServer]
POOL = "proj-a/linux"
DEPLOY_DOC = REPO / "docs" / "deploy.md"
# Clients of the deployment, known to its auth service only (not to purgecache's clients file).
TC_ADMIN = ("project-admin", "project-admin-token-0123456789")
TC_BUILDER = ("project-builder", "project-builder-token-0123456789")
TC_CLIENTS = f"""
[[clients]]
client_id = "{TC_ADMIN[0]}"
access_token = "{TC_ADMIN[1]}"
scopes = ["purge-cache:*"]

[[clients]]
client_id = "{TC_BUILDER[0]}"
access_token = "{TC_BUILDER[1]}"
scopes = ["purge-cache:{POOL}:checkouts"]
"""

INGRESS = """\
upstream purgecache {{
    server 127.0.0.1:{service_port};
    keepalive 8;
}}
upstream taskcluster-auth {{
    server 127.0.0.1:{auth_port};
}}
server {{
    listen 127.0.0.1:{port} ssl;
    server_name localhost;
    ssl_certificate {cert};
    ssl_certificate_key {key};

{route}
    location /api/auth/ {{
        proxy_pass http://taskcluster-auth;
        proxy_set_header Host $host;
    }}
    location / {{
        return 404;
    }}
}}
"""


def documented_route() -> str:
    """The one ```nginx block of docs/deploy.md: the deployment's route to purgecache."""
    found = re.findall(r"^ *```nginx\n(.*?)^ *```$", DEPLOY_DOC.read_text(), re.S | re.M)
    assert len(found) == 1, found
    return str(found[0])


@dataclass
class Deployment:
    """The ingress's root URL, the service behind it, the auth service and nginx."""

    root_url: str
    cert: Path
    service: LiveServer
    auth: VerifyingAuthService
    nginx: Nginx

    def client(self, calls: list[dict[str, object]]) -> list[dict[str, Any]]:
        """`calls` made by taskcluster 113 with the ingress's root URL (as TC_ADMIN)."""
        extra = {"REQUESTS_CA_BUNDLE": str(self.cert)}
        seen = official_client("calls", calls, self.root_url, TC_ADMIN, extra)
        assert isinstance(seen, list)
        return seen

    def ingress_paths(self) -> list[str]:
        """The paths of the requests nginx passed on, from its access log, in order."""
        log = (self.nginx.prefix / "access.log").read_text()
        return re.findall(r'"[A-Z]+ (\S+) HTTP/[0-9.]+"', log)


@pytest.fixture
def deployment(server_factory: ServerFactory, tmp_path: Path) -> Iterator[Deployment]:
    auth = VerifyingAuthService()
    auth.clients = parse_clients(tomllib.loads(TC_CLIENTS))
    try:
        port, service_port = free_port(), free_port()
        root_url = f"https://localhost:{port}"
        cert, key = throwaway_certificate(tmp_path, "localhost", "127.0.0.1")
        site = INGRESS.format(
            service_port=service_port,
            auth_port=auth.httpd.server_address[1],
            port=port,
            cert=cert,
            key=key,
            route=documented_route(),
        )
        nginx = Nginx(tmp_path / "nginx", site)
        try:
            nginx.wait_listening("127.0.0.1", port)
            service = server_factory(
                "--auth-root-url", root_url, "--root-url", root_url, "--trust-proxy",
                port=service_port,
                env={"SSL_CERT_FILE": str(cert)},  # the ingress's certificate, for the auth calls
            )  # fmt: skip
            yield Deployment(root_url, cert, service, auth, nginx)
        finally:
            nginx.stop()
    finally:
        auth.stop()


def test_official_client_through_the_deployments_ingress(deployment: Deployment) -> None:
    """Purges and reads by a client the deployment knows; a 403 naming what its scopes lack;
    one authenticateHawk call per request, each for the host, port and path the client
    signed, each passed through the ingress."""
    builder = {"clientId": TC_BUILDER[0], "accessToken": TC_BUILDER[1]}
    purge = {"method": "purgeCache", "pool": POOL}
    calls: list[dict[str, object]] = [
        {**purge, "payload": {"cacheName": "checkouts"}},
        {"method": "purgeRequests", "pool": POOL},
        {"method": "allPurgeRequests", "query": {"limit": 10}},
        {**purge, "payload": {"cacheName": "checkouts"}, "credentials": builder},
        {**purge, "payload": {"cacheName": "sources"}, "credentials": builder},
        {"method": "allPurgeRequests", "credentials": builder},
    ]
    seen = deployment.client(calls)

    assert seen[0] == {"result": None} and seen[3] == {"result": None}, seen
    assert [r["cacheName"] for r in seen[1]["result"]["requests"]] == ["checkouts"]
    assert [r["cacheName"] for r in seen[2]["result"]["requests"]] == ["checkouts"]
    for refused, missing in [(seen[4], f"purge-cache:{POOL}:sources"),
                             (seen[5], "purge-cache:all-purge-requests")]:  # fmt: skip
        error = refused["error"]
        assert (error["status_code"], error["code"]) == (403, "InsufficientScopes"), error
        message = error["body"]["message"]
        assert f"Client ID {TC_BUILDER[0]} does not have sufficient scopes" in message, message
        assert f"```\n{missing}\n```" in message, message

    # purgecache answered all six itself, the 403s included.
    lines = request_lines(deployment.service, lambda lines: len(lines) > len(calls))
    statuses = [line["status"] for line in lines if line["route"] != "ping"]  # not the start's
    assert statuses == [204, 200, 200, 204, 403, 403], lines

    # Exactly one authenticateHawk per request, for what the client signed.
    bodies = deployment.auth.bodies
    assert deployment.auth.request_calls() == len(bodies) == len(calls), bodies
    resource = f"/api/purge-cache/v1/purge-cache/{POOL.replace('/', '%2F')}"
    assert [b["resource"] for b in bodies] == [
        resource, resource, "/api/purge-cache/v1/purge-cache/list?limit=10",
        resource, resource, "/api/purge-cache/v1/purge-cache/list",
    ]  # fmt: skip
    port = int(deployment.root_url.rsplit(":", 1)[1])
    assert {(b["host"], b["port"], b["method"]) for b in bodies[3:5]} == {
        ("localhost", port, "post")
    }

    # Both ways through the ingress: each API call, then the service's question about it.
    paths = deployment.ingress_paths()
    assert [p for p in paths if p.startswith("/api/purge-cache/")] == [
        b["resource"] for b in bodies
    ]
    assert [p for p in paths if p.startswith("/api/auth/")] == [AUTH_PATH] * len(calls)


def test_reference_and_schemas_through_the_ingress(deployment: Deployment) -> None:
    """The block routes the served reference and schemas too, and they name the deployment's
    root URL (`--root-url`): a client built from them finds the schema it names."""
    verify = ssl.create_default_context(cafile=deployment.cert)
    with httpx.Client(verify=verify, timeout=10) as http:
        api = http.get(f"{deployment.root_url}/references/purge-cache/v1/api.json")
        assert api.status_code == 200, api.text
        (entry,) = [e for e in api.json()["entries"] if e["name"] == "purgeCache"]
        url = f"{deployment.root_url}/schemas/purge-cache/{entry['input'].rstrip('#')}"
        schema = http.get(url)
    assert schema.status_code == 200, schema.text
    assert schema.json()["$id"] == f"{url}#"
    assert deployment.auth.bodies == []  # unsigned reads: no authenticateHawk

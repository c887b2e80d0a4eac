"""`from_env`: which TASKCLUSTER_* variable wins, and what reaches the wire through each."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from client.flaky_server import FlakyServer
from purgecache.client import AsyncPurgeCache, ConfigurationError, Credentials, PurgeCache

ROOT = "https://tc.example.com"
PROXY = "http://taskcluster"
CREDENTIALS = {"TASKCLUSTER_CLIENT_ID": "me", "TASKCLUSTER_ACCESS_TOKEN": "secret"}
CERTIFICATE = '{"version":1,"scopes":[],"start":0,"expiry":1,"seed":"s","signature":"x"}'


@pytest.mark.parametrize("kind", [PurgeCache, AsyncPurgeCache])
@pytest.mark.parametrize(
    ("environ", "root_url", "credentials"),
    [
        ({"TASKCLUSTER_ROOT_URL": ROOT}, ROOT, None),
        ({"TASKCLUSTER_ROOT_URL": ROOT + "//", **CREDENTIALS}, ROOT, Credentials("me", "secret")),
        (
            {"TASKCLUSTER_ROOT_URL": ROOT, **CREDENTIALS, "TASKCLUSTER_CERTIFICATE": CERTIFICATE},
            ROOT,
            Credentials("me", "secret", CERTIFICATE),
        ),
        (
            {"TASKCLUSTER_PROXY_URL": PROXY, "TASKCLUSTER_ROOT_URL": ROOT, **CREDENTIALS},
            PROXY,
            None,
        ),
        ({"TASKCLUSTER_PROXY_URL": "", "TASKCLUSTER_ROOT_URL": ROOT}, ROOT, None),
        ({"TASKCLUSTER_ROOT_URL": ROOT, "TASKCLUSTER_ACCESS_TOKEN": "orphan"}, ROOT, None),
        ({"TASKCLUSTER_ROOT_URL": ROOT, "TASKCLUSTER_CLIENT_ID": ""}, ROOT, None),
    ],
    ids=[
        "root-url-anonymous",
        "root-url-credentials",
        "temporary-credentials",
        "proxy-wins-unsigned",
        "empty-proxy-ignored",
        "token-without-id-is-anonymous",
        "empty-client-id-is-anonymous",
    ],
)
def test_precedence(
    kind: type[PurgeCache], environ: dict[str, str], root_url: str, credentials: object
) -> None:
    """Proxy URL (unsigned) > root URL with TASKCLUSTER_CLIENT_ID/ACCESS_TOKEN/CERTIFICATE."""
    client = kind.from_env(environ)
    assert (client.root_url, client.credentials) == (root_url, credentials)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "set TASKCLUSTER_ROOT_URL"),
        ({"TASKCLUSTER_ROOT_URL": ""}, "set TASKCLUSTER_ROOT_URL"),
        ({"TASKCLUSTER_ROOT_URL": ROOT, "TASKCLUSTER_CLIENT_ID": "me"}, "ACCESS_TOKEN is not"),
        ({"TASKCLUSTER_ROOT_URL": "tc.example.com"}, "invalid root URL"),
        ({"TASKCLUSTER_ROOT_URL": "ftp://tc.example.com"}, "invalid root URL"),
        ({"TASKCLUSTER_ROOT_URL": "http://tc:port"}, "invalid root URL"),
        ({"TASKCLUSTER_ROOT_URL": "http://tc/?x=1"}, "no query"),
        ({"TASKCLUSTER_ROOT_URL": ROOT, **CREDENTIALS, "TASKCLUSTER_CERTIFICATE": "{"}, "JSON"),
    ],
)
def test_bad_environment_is_a_configuration_error(environ: dict[str, str], message: str) -> None:
    """Missing or malformed settings raise ConfigurationError (a ValueError) saying which."""
    with pytest.raises(ConfigurationError, match=message):
        PurgeCache.from_env(environ)


def test_os_environ_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an explicit mapping, from_env reads the process environment."""
    monkeypatch.delenv("TASKCLUSTER_PROXY_URL", raising=False)
    monkeypatch.setenv("TASKCLUSTER_ROOT_URL", "http://from-the-environment:8080")
    monkeypatch.setenv("TASKCLUSTER_CLIENT_ID", "env-client")
    monkeypatch.setenv("TASKCLUSTER_ACCESS_TOKEN", "env-token")
    with PurgeCache.from_env() as client:
        assert client.root_url == "http://from-the-environment:8080"
        assert client.credentials == Credentials("env-client", "env-token")


def test_through_the_proxy_requests_go_unsigned(flaky: Callable[..., FlakyServer]) -> None:
    """With TASKCLUSTER_PROXY_URL the request reaches the proxy without Authorization."""
    proxy = flaky(0)
    environ = {"TASKCLUSTER_PROXY_URL": proxy.root_url, "TASKCLUSTER_ROOT_URL": ROOT, **CREDENTIALS}
    with PurgeCache.from_env(environ) as client:
        client.ping()
    (seen,) = proxy.seen
    assert seen.path == "/api/purge-cache/v1/ping"
    assert "authorization" not in seen.headers


def test_with_the_root_url_requests_are_signed(flaky: Callable[..., FlakyServer]) -> None:
    """With TASKCLUSTER_ROOT_URL and credentials every request carries a Hawk header."""
    server = flaky(0)
    with PurgeCache.from_env({"TASKCLUSTER_ROOT_URL": server.root_url, **CREDENTIALS}) as client:
        client.ping()
    (seen,) = server.seen
    assert seen.headers["authorization"].startswith('Hawk mac="')
    assert 'id="me"' in seen.headers["authorization"]

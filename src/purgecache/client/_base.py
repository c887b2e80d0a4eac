"""What `PurgeCache` and `AsyncPurgeCache` have in common: construction, `from_env`, and
everything that needs no I/O (signed URLs)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import Generic, Self, TypeVar, Unpack

import httpx

from purgecache.client import _calls
from purgecache.client._calls import GetEndpoint
from purgecache.client._core import DEFAULT_SIGNED_URL_LIFETIME, ClientCore, ClientOptions
from purgecache.client._credentials import Credentials, settings_from_env

H = TypeVar("H", httpx.Client, httpx.AsyncClient)


class BaseClient(Generic[H]):
    """A purge-cache client over an httpx client of type `H`."""

    def __init__(
        self,
        root_url: str,
        credentials: Credentials | None = None,
        *,
        http_client: H | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        """Talk to the deployment at `root_url` (e.g. `https://tc.example.com`).

        Without `credentials` requests are unsigned (anonymous, or signed by a proxy).
        Options: `authorized_scopes` narrows what every request may do; `retries` (a
        `Retries`, default 5 retries) and `timeout` (seconds per phase of each attempt,
        default 30, or an `httpx.Timeout`) bound how long a call can take. `http_client`
        lets you bring your own httpx client (proxies, TLS settings); it is then yours to
        close.
        """
        self._core = ClientCore(root_url, credentials, **options)
        self._owns_http = http_client is None
        self._http: H = self._new_http() if http_client is None else http_client

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        http_client: H | None = None,
        **options: Unpack[ClientOptions],
    ) -> Self:
        """A client configured by `TASKCLUSTER_*` variables (`environ`, default `os.environ`).

        `TASKCLUSTER_PROXY_URL`, when set and not empty, is the root URL and requests go
        unsigned (the proxy signs them); otherwise `TASKCLUSTER_ROOT_URL` with
        `TASKCLUSTER_CLIENT_ID`, `TASKCLUSTER_ACCESS_TOKEN` and `TASKCLUSTER_CERTIFICATE`.
        Options are those of the constructor.
        """
        root_url, credentials = settings_from_env(os.environ if environ is None else environ)
        return cls(root_url, credentials, http_client=http_client, **options)

    def _new_http(self) -> H:
        raise NotImplementedError

    @property
    def root_url(self) -> str:
        """The deployment's root URL, normalised (no trailing slash)."""
        return self._core.root_url

    @property
    def credentials(self) -> Credentials | None:
        """The credentials requests are signed with, if any."""
        return self._core.credentials

    def signed_url(
        self,
        endpoint: GetEndpoint,
        worker_pool_id: str | None = None,
        *,
        since: datetime | str | None = None,
        continuation_token: str | None = None,
        limit: int | None = None,
        expires_in: float = DEFAULT_SIGNED_URL_LIFETIME,
    ) -> str:
        """A pre-signed URL (Hawk bewit) for a GET endpoint, valid for `expires_in` seconds.

        `endpoint` is the method's name: `purge_requests` (with `worker_pool_id` and
        optional `since`), `all_purge_requests` (optional `continuation_token`, `limit`),
        `ping`, `heartbeat`, `lbheartbeat` or `version`.
        """
        call = _calls.get_call(
            endpoint,
            worker_pool_id,
            since=since,
            continuation_token=continuation_token,
            limit=limit,
        )
        return self._core.signed_url(call, expires_in)

    def __repr__(self) -> str:
        who = self.credentials.client_id if self.credentials else None
        return f"{type(self).__name__}({self.root_url!r}, client_id={who!r})"

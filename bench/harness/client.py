"""One-off HTTP requests (preflight checks, bodies for nginx, paging), Hawk-signed."""

from __future__ import annotations

import http.client
from dataclasses import dataclass

from harness.hawk import Credentials, Target, header_for


@dataclass(frozen=True)
class Reply:
    """Status, body and headers of one response."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


class ServiceClient:
    """A keep-alive connection to the service at 127.0.0.1:port."""

    def __init__(self, port: int, credentials: Credentials | None, timeout: float = 60) -> None:
        self.port = port
        self.credentials = credentials
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def request(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        *,
        authorization: str | None = None,
    ) -> Reply:
        """Send one request; sign it unless `authorization` is given or there are no credentials."""
        headers = {"Host": f"127.0.0.1:{self.port}"}
        if authorization is None and self.credentials is not None:
            authorization = header_for(
                self.credentials, Target(method, target, "127.0.0.1", self.port), body
            )
        if authorization is not None:
            headers["Authorization"] = authorization
        if body is not None:
            headers["Content-Type"] = "application/json"
        self.connection.request(method, target, body=body, headers=headers)
        response = self.connection.getresponse()
        return Reply(response.status, response.read(), tuple(response.getheaders()))

    def close(self) -> None:
        self.connection.close()

"""Signing test requests the way the official Python client does (with mohawk)."""

from __future__ import annotations

from collections.abc import Generator

import httpx
import mohawk


class HawkAuth(httpx.Auth):
    """httpx auth that signs each request with Hawk, like the Taskcluster Python client."""

    def __init__(self, client_id: str, access_token: str, ext: str | None = "e30=") -> None:
        self.credentials = {"id": client_id, "key": access_token, "algorithm": "sha256"}
        self.ext = ext

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        content_type = request.headers.get("content-type", "")
        sender = mohawk.Sender(
            self.credentials,
            str(request.url),
            request.method,
            content=request.content.decode(),
            content_type=content_type,
            ext=self.ext,
        )
        request.headers["Authorization"] = sender.request_header
        yield request

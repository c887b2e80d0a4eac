"""A Taskcluster auth service for tests: `authenticateHawk` over real HTTP, giving real verdicts
(our own Hawk verification against the test clients), counting every call.

`status` forces an HTTP error status (an outage); `delay` holds each answer that long (a hung
service). The service's circuit probes ask without an `authorization`; `request_calls` counts
only the calls made for signed requests.
"""

from __future__ import annotations

import json
import threading
import time
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from purgecache.auth import credentials
from purgecache.auth.clients import parse_clients
from purgecache.model import format_time

from conftest import CLIENTS_TOML

AUTH_PATH = "/api/auth/v1/authenticate-hawk"


class AuthService:
    """`authenticateHawk` on a loopback port: records each request body and answers with
    `answer(body)`."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200
        self.delay = 0.0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))))
                fake.bodies.append(body)
                time.sleep(fake.delay)
                answer = json.dumps(fake.answer(body)).encode()
                self.send_response(fake.status if self.path == AUTH_PATH else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def calls(self) -> int:
        """How many `authenticateHawk` requests arrived so far."""
        return len(self.bodies)

    def request_calls(self) -> int:
        """How many `authenticateHawk` requests carried an `authorization` (not probes)."""
        return sum("authorization" in body for body in list(self.bodies))

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class VerifyingAuthService(AuthService):
    """`authenticateHawk` answered by verifying the request for real."""

    def __init__(self) -> None:
        self.clients = parse_clients(tomllib.loads(CLIENTS_TOML))
        super().__init__()

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        now = int(time.time() * 1000)
        verdict = credentials.authenticate(
            self.clients,
            body["method"],
            body["resource"],
            body["host"],
            body["port"],
            body.get("authorization"),
            now,
        )
        if verdict.failed:
            return {"status": "auth-failed", "message": verdict.message}
        answer: dict[str, Any] = {
            "status": verdict.status,
            "scheme": verdict.scheme,
            "scopes": list(verdict.scopes or ()),
            "expires": format_time(verdict.expires or now),
        }
        if verdict.client_id is not None:
            answer["clientId"] = verdict.client_id
        if verdict.hash is not None:
            answer["hash"] = verdict.hash
        return answer

"""A real HTTP server on a loopback port that fails the first N requests on purpose, then
answers like a healthy purge-cache service; it records every request it saw."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEALTHY_BODY = {"alive": True, "uptime": 1.5}


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up on a slow reply is expected here


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class FlakyServer:
    """Fails the first `failures` requests with `mode`, then answers `answer` (200 JSON).

    `mode` is an HTTP status (`"503"`), `"drop"` (close the connection without a reply)
    or `"slow"` (answer only after `delay` seconds).
    """

    def __init__(
        self,
        failures: int,
        mode: str = "503",
        *,
        delay: float = 1.0,
        retry_after: str | None = None,
        answer: bytes = json.dumps(HEALTHY_BODY).encode(),
    ) -> None:
        self.failures, self.mode, self.delay = failures, mode, delay
        self.retry_after, self.answer = retry_after, answer
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.httpd = _QuietServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def attempts(self) -> int:
        return len(self.seen)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    def _record(self, request: BaseHTTPRequestHandler) -> int:
        length = int(request.headers.get("content-length") or 0)
        body = request.rfile.read(length)
        headers = {name.lower(): value for name, value in request.headers.items()}
        with self.lock:
            self.seen.append(Seen(request.command, request.path, headers, body))
            return len(self.seen)

    def _reply(self, request: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        request.send_response(status)
        request.send_header("content-type", "application/json; charset=utf-8")
        request.send_header("content-length", str(len(body)))
        request.send_header("x-for-request-id", f"request-{self.attempts}")
        if status >= 500 and self.retry_after is not None:
            request.send_header("retry-after", self.retry_after)
        request.end_headers()
        request.wfile.write(body)

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        attempt = self._record(request)
        if attempt > self.failures:
            self._reply(request, 200, self.answer)
        elif self.mode == "drop":
            request.close_connection = True
        elif self.mode == "slow":
            time.sleep(self.delay)
            self._reply(request, 200, self.answer)
        else:
            status = int(self.mode)
            body = {"code": f"Status{status}", "message": f"failure {attempt}", "requestInfo": {}}
            self._reply(request, status, json.dumps(body).encode())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                owner._handle(self)

            def do_POST(self) -> None:
                owner._handle(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

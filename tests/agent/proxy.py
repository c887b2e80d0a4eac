"""A recording HTTP proxy on a loopback port: forwards every request to a real server
(keeping the `Host` header, so Hawk signatures stay valid) and records what it saw, to count
the requests an agent makes and read their `since`; it answers every POST 404, as upstream
Taskcluster answers the extensions it lacks; it can also shift the answers' `Date`
header or rewrite their bodies (a lying proxy)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import httpx

from client.flaky_server import _QuietServer


class RecordingProxy:
    """Forwards to `upstream` (a root URL); `paths` lists each request's path and query;
    `date_shift` is added to every answer's `Date`; `rewrite`, if set, changes every
    answer's body; a GET whose path contains one of `missing` is answered 404."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.date_shift = timedelta(0)
        self.rewrite: Callable[[bytes], bytes] | None = None
        self.missing: tuple[str, ...] = ()
        self.paths: list[str] = []
        self.lock = threading.Lock()
        self.httpd = _QuietServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def since_values(self) -> list[str | None]:
        """The `since` of each recorded purgeRequests call (None when absent)."""
        values: list[str | None] = []
        for path in self.paths:
            parts = urlsplit(path)
            purge_requests = "/purge-cache/" in parts.path and "/ext/" not in parts.path
            if purge_requests and not parts.path.endswith("/list"):
                values.append(parse_qs(parts.query).get("since", [None])[0])
        return values

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                with proxy.lock:
                    proxy.paths.append(self.path)
                if any(part in self.path for part in proxy.missing):
                    self.do_POST()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                answer = httpx.get(proxy.upstream + self.path, headers=headers, timeout=10)
                self.send_response_only(answer.status_code)  # no Date of its own
                for name in ("content-type", "retry-after", "x-for-request-id"):
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                if "date" in answer.headers:
                    date = parsedate_to_datetime(answer.headers["date"]) + proxy.date_shift
                    self.send_header("date", format_datetime(date, usegmt=True))
                body = answer.content if proxy.rewrite is None else proxy.rewrite(answer.content)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                """As upstream Taskcluster answers an extension it lacks: 404."""
                if self.command == "POST":
                    with proxy.lock:
                        proxy.paths.append(self.path)
                self.rfile.read(int(self.headers.get("content-length", "0")))
                body = b'{"error":"Not found"}'
                self.send_response_only(404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

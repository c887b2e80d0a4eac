"""Real receivers of events on loopback: a webhook server that checks signatures and can be
made to fail, and a RabbitMQ queue bound to a test's own exchange."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiormq
import orjson
import pytest

RABBIT_URL = "amqp://guest:guest@127.0.0.1:5672/"


def verify(secret: bytes, header: str, body: bytes) -> bool:
    """Whether `X-Purgecache-Signature` signs `body` with `secret` (as a receiver checks)."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret, f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(time.time() - int(fields["t"])) < 300


class WebhookReceiver:
    """Records each POSTed event (body, whether signed right); answers `status`. While
    `holding`, it records each event in `held` instead and answers nothing until `release`."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.status = 204
        self.events: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.holding = False
        self.held: list[dict[str, Any]] = []
        self.released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.holding:
                    receiver.held.append(orjson.loads(body))
                    receiver.released.wait(30)
                    return  # the connection closes unanswered
                status = receiver.status
                if status < 300:
                    if verify(receiver.secret, self.headers["X-Purgecache-Signature"], body):
                        receiver.events.append(orjson.loads(body))
                    else:
                        receiver.bad_signatures += 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def ids(self) -> list[str]:
        return [event["eventId"] for event in self.events]

    def release(self) -> None:
        """Stop holding: the held requests end unanswered, the next ones are answered."""
        self.holding = False
        self.released.set()

    def close(self) -> None:
        self.release()
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Message:
    routing_key: str
    message_id: str
    delivery_mode: int
    body: dict[str, Any]


class RabbitQueue:
    """An exclusive queue bound to a fresh exchange of this test (`exchange`) with `#`, or to
    a given exchange (shared: never deleted) with a given binding key; `arguments` are the
    queue's (`x-max-length`, `x-overflow` ...)."""

    def __init__(
        self,
        exchange: str | None = None,
        binding: str = "#",
        arguments: dict[str, Any] | None = None,
    ) -> None:
        self.owned = exchange is None
        self.exchange = exchange or f"exchange/purgecache-test/{uuid.uuid4()}"
        self.binding = binding
        self.arguments = arguments or {}
        self.loop = asyncio.new_event_loop()
        self.messages: list[Message] = []
        self.loop.run_until_complete(self._open())

    async def _open(self) -> None:
        self.connection = await aiormq.connect(RABBIT_URL)
        self.channel = await self.connection.channel()
        await self.channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
        declared = await self.channel.queue_declare(
            exclusive=True, auto_delete=True, arguments=self.arguments
        )
        assert declared.queue is not None
        self.queue: str = declared.queue
        await self.channel.queue_bind(self.queue, self.exchange, routing_key=self.binding)

    def drain(self) -> list[Message]:
        """Every message that arrived so far (acknowledged)."""
        self.loop.run_until_complete(self._drain())
        return self.messages

    async def _drain(self) -> None:
        while True:
            got = await self.channel.basic_get(self.queue, no_ack=True)
            if got.body is None or got.delivery is None or not hasattr(got.delivery, "routing_key"):
                return
            props = got.header.properties
            message = Message(
                str(got.delivery.routing_key),
                str(props.message_id),
                int(props.delivery_mode or 0),
                orjson.loads(got.body),
            )
            self.messages.append(message)

    def ids(self) -> list[str]:
        return [m.message_id for m in self.drain()]

    def unbind(self) -> None:
        """Receive nothing more from the exchange (which stays)."""
        unbinding = self.channel.queue_unbind(self.queue, self.exchange, routing_key=self.binding)
        self.loop.run_until_complete(unbinding)

    def close(self) -> None:
        async def shut() -> None:
            if self.owned:
                await self.channel.exchange_delete(self.exchange)
            await self.connection.close()

        self.loop.run_until_complete(shut())
        self.loop.close()


def rabbit_queue(*args: Any, **kwargs: Any) -> RabbitQueue:
    """A RabbitQueue on the shared broker (skipped when it does not answer, failed under CI)."""
    try:
        return RabbitQueue(*args, **kwargs)
    except OSError as error:  # pragma: no cover - the machine's broker is down
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"RabbitMQ at 127.0.0.1:5672 does not answer: {error}")

"""Where events are delivered: an AMQP 0-9-1 topic exchange (aiormq, the optional `[amqp]`
extra) and signed webhooks (httpx). A sink raises DeliveryFailed when an event may not have
arrived; the dispatcher then retries it later."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Protocol

import httpx

from purgecache.events.model import SIGNATURE_HEADER, OutboxEvent, routing_key, signature

if TYPE_CHECKING:
    import aiormq.abc

AMQP_TARGET = "amqp"
TIMEOUT = 10.0  # seconds for one delivery: a connect, a publish and its confirm, a POST


class DeliveryFailed(Exception):
    """The event may not have arrived (the message says why, with no secret in it)."""


class Sink(Protocol):
    """One target's delivery."""

    target: str

    async def deliver(self, event: OutboxEvent) -> None:
        """Deliver one event, or raise DeliveryFailed."""

    async def close(self) -> None:
        """Release connections."""


class AmqpSink:
    """Persistent messages on a durable topic exchange, each confirmed by the broker."""

    target = AMQP_TARGET

    def __init__(self, url: str, exchange: str) -> None:
        self.url = url
        self.exchange = exchange
        self._connection: aiormq.abc.AbstractConnection | None = None
        self._channel: aiormq.abc.AbstractChannel | None = None

    async def _open(self) -> aiormq.abc.AbstractChannel:
        import aiormq

        if self._channel is None or self._channel.is_closed:
            await self.close()
            self._connection = await aiormq.connect(self.url)
            channel = await self._connection.channel(publisher_confirms=True)
            await channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
            self._channel = channel
        return self._channel

    async def deliver(self, event: OutboxEvent) -> None:
        try:
            await asyncio.wait_for(self._publish(event), TIMEOUT)
        except Exception as error:  # any failure, a time-out included
            await self.close()
            raise DeliveryFailed(f"AMQP: {type(error).__name__}: {error}") from error

    async def _publish(self, event: OutboxEvent) -> None:
        from pamqp.commands import Basic

        channel = await self._open()
        properties = Basic.Properties(
            content_type="application/json",
            delivery_mode=2,  # persistent
            message_id=event.event_id,
            timestamp=None,
        )
        key = routing_key(event.kind, event.worker_pool_id, event.cache_name)
        answer = await channel.basic_publish(
            event.body, exchange=self.exchange, routing_key=key, properties=properties
        )
        # A Nack arrives as aiormq's DeliveryError (deliver() makes it a failure); this
        # catches any other answer but an Ack, should the channel ever lose its confirms.
        if not isinstance(answer, Basic.Ack):
            raise DeliveryFailed(f"AMQP: the broker did not confirm ({type(answer).__name__})")

    async def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):  # already gone: nothing to release
                await asyncio.wait_for(connection.close(), 2)


class WebhookSink:
    """A JSON POST signed with the shared secret; any 2xx is a delivery."""

    def __init__(self, url: str, secret: bytes, client: httpx.AsyncClient) -> None:
        self.url = url
        self.target = f"webhook:{url}"
        self.secret = secret
        self.client = client

    async def deliver(self, event: OutboxEvent) -> None:
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(self.secret, event.body, int(time.time())),
            "X-Purgecache-Event": event.kind,
            "X-Purgecache-Event-Id": event.event_id,
        }
        try:
            answer = await self.client.post(self.url, content=event.body, headers=headers)
        except httpx.HTTPError as error:
            raise DeliveryFailed(f"webhook: {type(error).__name__}: {error}") from error
        if not answer.is_success:
            raise DeliveryFailed(f"webhook: HTTP {answer.status_code}")

    async def close(self) -> None:
        await self.client.aclose()


def webhook_client() -> httpx.AsyncClient:
    """The HTTP client of the webhooks (no redirects: a 3xx is not a delivery)."""
    return httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)


def amqp_sink(url: str, exchange: str) -> AmqpSink:
    """The AMQP sink; refuses at start-up when the `[amqp]` extra is missing."""
    try:
        import aiormq  # noqa: F401
    except ModuleNotFoundError as error:
        raise RuntimeError(
            "--amqp-url needs the [amqp] extra (aiormq): pip install 'purgecache[amqp]'"
        ) from error
    return AmqpSink(url, exchange)

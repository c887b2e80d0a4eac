"""Delivery from the outbox: one loop per target leases due deliveries, delivers them and
records the result. Several processes (replicas, workers) may run it on one database: a lease
gives each delivery to one of them at a time, so an event is delivered twice only when a
lease runs out mid-delivery (a process killed, or a delivery slower than the lease).

A failed attempt is retried after an exponential backoff with jitter; once an event is older
than `give_up_ms`, its failed delivery is marked failed and waits for `purgecache events
retry` (or `drop`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from purgecache.events.model import retry_delay_ms
from purgecache.events.sinks import DeliveryFailed, Sink
from purgecache.events.targets import TargetRegistration
from purgecache.logs import log_event
from purgecache.storage import Storage, StorageError
from purgecache.storage.outbox import Claimed

log = logging.getLogger("purgecache")

GIVE_UP_MS = 24 * 3_600_000


@dataclass(frozen=True)
class Timing:
    """How the dispatcher paces itself (ms)."""

    lease_ms: int = 60_000
    retry_cap_ms: int = 3_600_000
    give_up_ms: int = GIVE_UP_MS
    poll_ms: int = 250
    batch: int = 100


class Dispatcher:
    """Delivers the outbox's events to `sinks` until cancelled."""

    def __init__(
        self,
        storage: Storage,
        sinks: Sequence[Sink],
        clock: Callable[[], int],
        timing: Timing = Timing(),
        on_result: Callable[[str, bool], object] = lambda target, ok: None,
        targets: TargetRegistration | None = None,
    ) -> None:
        self.storage = storage
        self.sinks = tuple(sinks)
        self.targets = targets or TargetRegistration(storage, [sink.target for sink in sinks])
        self.clock = clock
        self.timing = timing
        self.on_result = on_result

    async def run(self) -> None:
        """Register the targets (if start-up could not), then deliver forever (one loop per
        target)."""
        await self._register()
        loops = [asyncio.create_task(self._deliver_forever(sink)) for sink in self.sinks]
        try:
            await asyncio.gather(*loops)
        finally:
            for loop in loops:
                loop.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            for sink in self.sinks:
                await sink.close()

    async def _register(self) -> None:
        while True:
            try:
                await self.targets.ensure()
                return
            except StorageError as error:
                log_event(log, logging.WARNING, "event-targets-failed", error=str(error))
                await asyncio.sleep(self.timing.poll_ms / 1000)

    async def _deliver_forever(self, sink: Sink) -> None:
        while True:
            try:
                busy = await self.deliver_due(sink)
            except StorageError as error:
                log_event(log, logging.WARNING, "event-delivery-stalled", error=str(error))
                busy = False
            if not busy:
                await asyncio.sleep(self.timing.poll_ms / 1000)

    async def deliver_due(self, sink: Sink) -> bool:
        """One round: lease the sink's due deliveries and deliver them in order; True when
        every one went (more may be due)."""
        now = self.clock()
        claimed = await self.storage.claim_events(
            sink.target, now, self.timing.lease_ms, self.timing.batch
        )
        for index, delivery in enumerate(claimed):
            try:
                await sink.deliver(delivery.event)
            except DeliveryFailed as error:
                next_at = await self._failed(sink.target, delivery, str(error))
                await self._postpone(sink.target, claimed[index + 1 :], next_at, str(error))
                return False
            await self.storage.event_delivered(sink.target, delivery.seq)
            self.on_result(sink.target, True)
        return bool(claimed)

    async def _failed(self, target: str, delivery: Claimed, error: str) -> int:
        """Count the attempt; retry after a backoff, or give up on an old event; when the
        next attempt is due."""
        now, attempts = self.clock(), delivery.attempts + 1
        self.on_result(target, False)
        given_up = now - delivery.event.created_at >= self.timing.give_up_ms
        next_at = now + retry_delay_ms(attempts, self.timing.retry_cap_ms)
        await self.storage.event_failed(
            target, delivery.seq, attempts, next_at, now if given_up else None, error
        )
        log_event(
            log,
            logging.WARNING,
            "event-delivery-failed",
            target=target,
            event_id=delivery.event.event_id,
            attempts=attempts,
            given_up=given_up,
            error=error,
        )
        return next_at

    async def _postpone(
        self, target: str, rest: Sequence[Claimed], next_at: int, error: str
    ) -> None:
        """The target is down: the rest of the batch waits as long as the failed one, no
        attempt counted (a cut-off broker would otherwise burn every event's attempts)."""
        for delivery in rest:
            await self.storage.event_failed(
                target, delivery.seq, delivery.attempts, next_at, None, error
            )

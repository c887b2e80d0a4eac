"""The circuit breaker on its own: opened by the first outage failure, one probe at a time,
closed by the first probe that succeeds, one log line each way."""

from __future__ import annotations

import asyncio
import logging

import pytest

from purgecache.circuit import Circuit, CircuitOpen


class Down(CircuitOpen):
    pass


class Dependency:
    """A probe target that fails until `back`, counting probes and how many overlap."""

    def __init__(self) -> None:
        self.back = False
        self.probes = 0
        self.running = 0
        self.most_at_once = 0

    async def probe(self) -> None:
        self.probes += 1
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(0.005)
            if not self.back:
                raise OSError("still down")
        finally:
            self.running -= 1


def test_one_probe_at_a_time_until_the_dependency_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Many trips open the circuit once; probes never overlap; the first success closes it
    and `check` lets calls through again."""
    dependency = Dependency()
    circuit = Circuit("thing", dependency.probe, Down, interval=0.005)

    async def scenario() -> None:
        circuit.check()  # closed: nothing happens
        for _ in range(50):
            circuit.trip(OSError("refused"))
            with pytest.raises(Down):
                circuit.check()
            await asyncio.sleep(0.001)
        assert dependency.probes >= 3
        dependency.back = True
        while circuit.is_open:
            await asyncio.sleep(0.005)
        circuit.check()
        await circuit.close()

    with caplog.at_level(logging.INFO, logger="purgecache"):
        asyncio.run(scenario())
    assert dependency.most_at_once == 1
    events = [r.getMessage() for r in caplog.records]
    assert sum("circuit-opened" in e for e in events) == 1, events
    assert sum("circuit-closed" in e for e in events) == 1, events

"""Access and audit lines are batched per turn of the event loop, one JSON object per line."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from purgecache.logs import LineBatcher


def test_lines_added_in_one_turn_are_written_together_in_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("purgecache.test-batch")
    batcher = LineBatcher(logger)

    async def scenario() -> None:
        for index in range(3):
            batcher.add({"event": "request", "n": index})
        assert caplog.records == []  # nothing written before the turn ends
        await asyncio.sleep(0)
        batcher.add({"event": "request", "n": 3, "odd": object()})
        await asyncio.sleep(0)

    with caplog.at_level(logging.INFO, logger=logger.name):
        asyncio.run(scenario())
    first, second = (record.getMessage().split("\n") for record in caplog.records)
    assert [json.loads(line)["n"] for line in first] == [0, 1, 2]
    assert json.loads(second[0])["n"] == 3 and second[0].startswith('{"event":"request"')


def test_nothing_is_queued_when_the_logger_is_off(caplog: pytest.LogCaptureFixture) -> None:
    """With the logger off a line is dropped at once: nothing scheduled, nothing written later."""
    logger = logging.getLogger("purgecache.test-off")
    batcher = LineBatcher(logger)
    with caplog.at_level(logging.WARNING, logger=logger.name):
        assert not batcher.enabled
        batcher.add({"event": "request"})  # no running loop: scheduling a flush would raise
    with caplog.at_level(logging.INFO, logger=logger.name):
        assert batcher.enabled
        batcher.flush()  # had the line been queued, it would be written now
    assert caplog.records == []

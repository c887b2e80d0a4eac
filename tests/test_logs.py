"""Access and audit lines are batched per turn of the event loop, one JSON object per line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from purgecache.logs import LineBatcher


def test_lines_added_in_one_turn_are_written_together_in_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Lines added in one turn are one record, in order; the next turn's are another."""
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


def test_access_lines_follow_the_logger_level_from_the_next_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """add_request() asks the logger once per batch: off, nothing is queued or scheduled; a
    level raised while a batch waits drops lines from the next batch on."""
    logger = logging.getLogger("purgecache.test-access-level")
    batcher = LineBatcher(logger)
    with caplog.at_level(logging.WARNING, logger=logger.name):
        batcher.add_request(
            "GET", "ping", 200, 0.001, None, None, "rid-0"
        )  # no loop: not scheduled

    async def scenario() -> None:
        with caplog.at_level(logging.INFO, logger=logger.name):
            batcher.add_request("GET", "ping", 200, 0.001, None, None, "rid-1")
        batcher.add_request("GET", "ping", 200, 0.001, None, None, "rid-2")  # same batch
        with caplog.at_level(logging.INFO, logger=logger.name):
            await asyncio.sleep(0)
        batcher.add_request("GET", "ping", 200, 0.001, None, None, "rid-3")  # next batch: off
        await asyncio.sleep(0)

    caplog.set_level(logging.WARNING, logger=logger.name)
    asyncio.run(scenario())
    lines = [line for record in caplog.records for line in record.getMessage().split("\n")]
    assert [json.loads(line)["request_id"] for line in lines] == ["rid-1", "rid-2"]


@pytest.fixture
def plain_logger() -> Iterator[
    tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]]
]:
    """A logger as `serve` configures one: a StreamHandler with a `%(message)s` formatter."""
    logger = logging.getLogger("purgecache.test-plain")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream, handler
    logger.handlers[:] = []
    logger.propagate = True


def test_a_batch_reaches_a_plain_stream_handler_as_json_lines(
    plain_logger: tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A plain stream handler gets each batch as its lines, written straight to its stream
    (no LogRecord per batch), one JSON object per line, each line ending in a newline."""
    logger, stream, handler = plain_logger
    logger.handlers[:] = [handler]  # only this one (pytest's capture handlers need records)
    made: list[str] = []
    real = logger.makeRecord

    def counting(*args: object, **kwargs: object) -> logging.LogRecord:
        record = real(*args, **kwargs)  # type: ignore[arg-type]
        made.append(record.getMessage())
        return record

    batcher = LineBatcher(logger)
    batcher.flush()  # the first flush probes the formatter (one record); none after that
    batcher._write('{"event":"warm"}')
    monkeypatch.setattr(logger, "makeRecord", counting)

    async def scenario() -> None:
        batcher.add({"event": "request", "n": 1})
        batcher.add({"event": "request", "n": 2})
        await asyncio.sleep(0)
        batcher.add({"event": "request", "n": 3})
        await asyncio.sleep(0)

    asyncio.run(scenario())
    lines = stream.getvalue().splitlines()
    assert [json.loads(line).get("n") for line in lines] == [None, 1, 2, 3]
    assert stream.getvalue().endswith("}\n")
    assert made == []


def test_a_formatter_that_changes_lines_still_gets_records(
    plain_logger: tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]],
) -> None:
    """A handler whose formatter adds to the message is not bypassed: it formats every batch,
    also when its formatter is swapped after the first batch."""
    logger, stream, handler = plain_logger
    batcher = LineBatcher(logger)
    batcher._write('{"event":"first"}')
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    batcher._write('{"event":"second"}')
    assert stream.getvalue().splitlines() == ['{"event":"first"}', 'INFO {"event":"second"}']


def test_a_failing_stream_is_reported_by_the_handler_and_serving_goes_on(
    plain_logger: tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A write error on the direct path goes to the handler's handleError, as logging's own
    emit would, and flush() does not raise."""
    logger, stream, handler = plain_logger
    stream.close()
    reported: list[logging.LogRecord] = []
    monkeypatch.setattr(handler, "handleError", reported.append)
    LineBatcher(logger)._write('{"event":"lost"}')
    assert [record.getMessage() for record in reported] == ['{"event":"lost"}']


def test_add_request_writes_the_access_line_shape(
    plain_logger: tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]],
) -> None:
    """add_request() writes the access line's fields in their order, duration_ms in ms with
    at most 3 decimals, None as null, a hint last and only on its own line."""
    logger, stream, _ = plain_logger
    batcher = LineBatcher(logger)

    async def scenario() -> None:
        batcher.add_request("GET", "ping", 200, 0.0123456, None, "10.0.0.1", "rid-1")
        batcher.add_request("POST", "purgeCache", 401, 0.5, "c", "10.0.0.2", "rid-2", "bad MAC")
        batcher.add_request("GET", "ping", 200, 0.001, "d", "10.0.0.3", "rid-3")
        await asyncio.sleep(0)

    asyncio.run(scenario())
    first, refused, last = (json.loads(text) for text in stream.getvalue().splitlines())
    fields = [
        "event", "method", "route", "status", "duration_ms", "client_id", "client_ip",
        "request_id",
    ]  # fmt: skip
    assert list(first) == list(last) == fields
    assert list(refused) == [*fields, "hint"]
    assert first["event"] == "request" and first["status"] == 200 and first["client_id"] is None
    assert first["client_ip"] == "10.0.0.1" and first["request_id"] == "rid-1"
    assert first["duration_ms"] == 12.346  # whole microseconds, rounded half up
    assert refused == {
        "event": "request", "method": "POST", "route": "purgeCache", "status": 401,
        "duration_ms": 500.0, "client_id": "c", "client_ip": "10.0.0.2", "request_id": "rid-2",
        "hint": "bad MAC",
    }  # fmt: skip
    assert (last["client_id"], last["client_ip"], last["request_id"]) == ("d", "10.0.0.3", "rid-3")


def test_with_a_delay_lines_wait_for_it_or_for_a_full_batch(
    plain_logger: tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]],
) -> None:
    """A batcher with a delay writes its lines together once the delay has passed, or at once
    when the batch is full; nothing is lost."""
    logger, stream, _ = plain_logger
    delay = 0.05
    batcher = LineBatcher(logger, delay=delay, max_lines=3)

    async def written(count: int) -> None:
        """Wait until `count` lines are written (fails after 5 s)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while len(stream.getvalue().splitlines()) < count:
            assert loop.time() - started < 5, stream.getvalue()
            await asyncio.sleep(0.005)

    async def scenario() -> None:
        # Timed from before the line is added, so a slow machine only makes it longer: a line
        # written at the end of its turn (no delay) is seen well before the delay.
        loop = asyncio.get_running_loop()
        added = loop.time()
        batcher.add({"n": 1})
        await asyncio.sleep(0)  # a turn passes
        await written(1)
        assert loop.time() - added >= delay - 0.001  # it waited for the delay
        assert [json.loads(x)["n"] for x in stream.getvalue().splitlines()] == [1]
        for n in (2, 3, 4):
            batcher.add({"n": n})
        assert len(stream.getvalue().splitlines()) == 4  # the full batch went at once
        batcher.add({"n": 5})
        await written(5)

    asyncio.run(scenario())
    assert [json.loads(x)["n"] for x in stream.getvalue().splitlines()] == [1, 2, 3, 4, 5]

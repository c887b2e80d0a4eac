"""Access and audit lines are batched per turn of the event loop, one JSON object per line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from purgecache.logs import AccessLine, LineBatcher, round_ms


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


def ping_line(request_id: str) -> AccessLine:
    return AccessLine("GET", "ping", 200, 1.0, None, None, request_id)


def test_access_lines_follow_the_logger_level_from_the_next_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """add() asks the logger once per batch: off, nothing is queued or scheduled; a
    level raised while a batch waits drops lines from the next batch on."""
    logger = logging.getLogger("purgecache.test-access-level")
    batcher = LineBatcher(logger)
    with caplog.at_level(logging.WARNING, logger=logger.name):
        batcher.add(ping_line("rid-0"))  # no loop: not scheduled

    async def scenario() -> None:
        with caplog.at_level(logging.INFO, logger=logger.name):
            batcher.add(ping_line("rid-1"))
        batcher.add(ping_line("rid-2"))  # same batch
        with caplog.at_level(logging.INFO, logger=logger.name):
            await asyncio.sleep(0)
        batcher.add(ping_line("rid-3"))  # next batch: off
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
    batcher._write(b'{"event":"warm"}\n')
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
    batcher._write(b'{"event":"first"}\n')
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    batcher._write(b'{"event":"second"}\n')
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
    LineBatcher(logger)._write(b'{"event":"lost"}\n')
    assert [record.getMessage() for record in reported] == ['{"event":"lost"}']


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_a_batch_to_a_text_file_keeps_the_order_and_the_characters(encoding: str) -> None:
    """To a UTF-8 file a batch goes to the binary buffer as it is, after what was written
    through the text layer before it; to a file in another encoding it is written as text.
    Either way the file reads back as the same lines, in order."""
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding=encoding)
    logger = logging.getLogger(f"purgecache.test-file-{encoding}")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        stream.write("before\n")  # still in the text layer's buffer
        batcher = LineBatcher(logger)

        async def scenario() -> None:
            batcher.add({"event": "request", "client_id": "rené"})
            batcher.add({"event": "request", "n": 2})
            await asyncio.sleep(0)  # the batch is written

        asyncio.run(scenario())
        stream.write("after\n")
        stream.flush()
        assert raw.getvalue().decode(encoding).splitlines() == [
            "before",
            '{"event":"request","client_id":"rené"}',
            '{"event":"request","n":2}',
            "after",
        ]
    finally:
        logger.handlers[:] = []
        logger.propagate = True


def test_access_lines_have_their_fields_in_order(
    plain_logger: tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]],
) -> None:
    """An access line has its fields in their order, None as null, a hint last and only on
    its own line; lines with and without a hint share a batch."""
    logger, stream, _ = plain_logger
    batcher = LineBatcher(logger)

    async def scenario() -> None:
        batcher.add(AccessLine("GET", "ping", 200, 12.346, None, "10.0.0.1", "rid-1"))
        batcher.add(
            AccessLine("POST", "purgeCache", 401, 500.0, "c", "10.0.0.2", "rid-2", "bad MAC")
        )
        batcher.add(AccessLine("GET", "ping", 200, 1.0, "d", "10.0.0.3", "rid-3"))
        await asyncio.sleep(0)

    asyncio.run(scenario())
    text = stream.getvalue()
    assert text.count("\n") == 3 and text.endswith("}\n")
    first, refused, last = (json.loads(line) for line in text.splitlines())
    fields = [
        "event", "method", "route", "status", "duration_ms", "client_id", "client_ip",
        "request_id",
    ]  # fmt: skip
    assert list(first) == list(last) == fields
    assert list(refused) == [*fields, "hint"]
    assert first == {
        "event": "request", "method": "GET", "route": "ping", "status": 200,
        "duration_ms": 12.346, "client_id": None, "client_ip": "10.0.0.1", "request_id": "rid-1",
    }  # fmt: skip
    assert refused == {
        "event": "request", "method": "POST", "route": "purgeCache", "status": 401,
        "duration_ms": 500.0, "client_id": "c", "client_ip": "10.0.0.2", "request_id": "rid-2",
        "hint": "bad MAC",
    }  # fmt: skip
    assert (last["client_id"], last["client_ip"], last["request_id"]) == ("d", "10.0.0.3", "rid-3")


@pytest.mark.parametrize(
    ("seconds", "ms"),
    [
        (0.0123456, 12.346),
        (0.0123454, 12.345),
        (0.5, 500.0),
        (0.0000004, 0.0),
        (0.0000006, 0.001),
        (1.0, 1000.0),
        (123.4567894, 123456.789),
        (0.0025, 2.5),
    ],
)
def test_durations_are_whole_microseconds_in_ms(seconds: float, ms: float) -> None:
    """duration_ms: milliseconds with 3 decimals (whole microseconds, rounded to nearest),
    written as the shortest decimal: 12.346, not 12.346000000000002."""
    assert round_ms(seconds) == ms
    assert repr(round_ms(seconds)) == repr(ms)


def test_the_app_rounds_durations_as_round_ms_does() -> None:
    """`finish` writes round_ms's expression inline (a call per request costs); this fails
    when the two drift apart."""
    import inspect

    from purgecache.api.app import PurgeCacheApp

    body = inspect.getsource(round_ms).rsplit("return ", 1)[1].strip()
    assert body.startswith("(seconds * 1e6")
    inline = body.replace("seconds", "elapsed")
    assert f"{inline},  # round_ms" in inspect.getsource(PurgeCacheApp.finish)


def test_a_value_that_cannot_be_encoded_loses_only_its_own_line(
    plain_logger: tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]],
) -> None:
    """A line whose value is not JSON even as text (its str() raises) is written as an
    `unloggable` line; the rest of its batch is written as usual."""
    logger, stream, _ = plain_logger
    batcher = LineBatcher(logger)

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no text for this one")

    async def scenario() -> None:
        batcher.add({"event": "before"})
        batcher.add({"event": "odd", "value": Unprintable()})
        batcher.add({"event": "after", "odd": object()})
        await asyncio.sleep(0)

    asyncio.run(scenario())
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["before", "unloggable", "after"]
    assert lines[1]["error"] == "no text for this one"
    assert lines[2]["odd"].startswith("<object object at")


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

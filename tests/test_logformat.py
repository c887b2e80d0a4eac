"""Every record renders as one JSON object on one line; batched access lines pass as they are."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from purgecache.logformat import JsonLineFormatter
from purgecache.logs import log_event
from purgecache.redact import dsn_secrets


class Captured(logging.Handler):
    """A handler keeping what the formatter made of each record."""

    def __init__(self, formatter: JsonLineFormatter) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def capture(
    name: str, formatter: JsonLineFormatter | None = None
) -> tuple[logging.Logger, Captured]:
    logger = logging.getLogger(name)
    handler = Captured(formatter or JsonLineFormatter())
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, handler


def test_our_events_carry_their_fields() -> None:
    """`log_event` renders time, level, logger, event and its fields (non-JSON values as str)."""
    logger, handler = capture("purgecache.test-event")
    log_event(logger, logging.WARNING, "storage-error", route="purgeCache", odd=object)
    (record,) = map(json.loads, handler.lines)
    assert list(record)[:4] == ["time", "level", "logger", "event"]
    assert record["level"] == "warning" and record["logger"] == "purgecache.test-event"
    assert (record["event"], record["route"]) == ("storage-error", "purgeCache")
    assert record["odd"] == str(object) and record["time"].endswith("Z")


def test_foreign_records_are_json_with_the_exception_as_a_field() -> None:
    """Another library's record, traceback and all, is one line with `message` and `exception`."""
    logger, handler = capture("psycopg.pool.test")
    try:
        raise ValueError("two\nlines")
    except ValueError:
        logger.warning("error connecting in %r", "pool-1", exc_info=True)
    (line,) = handler.lines
    assert "\n" not in line
    record = json.loads(line)
    assert record["message"] == "error connecting in 'pool-1'"
    assert (
        record["exception"].startswith("Traceback")
        and "ValueError: two\nlines" in record["exception"]
    )


def test_batched_lines_pass_through_untouched() -> None:
    """An access-log record (already JSON lines) comes out as the very same string."""
    logger, handler = capture("purgecache.access")
    batch = '{"event":"request","n":1}\n{"event":"request","n":2}'
    logger.info(batch)
    assert handler.lines[0] is batch


def test_known_secrets_are_scrubbed_from_every_rendered_record() -> None:
    """A password quoted by a library's message or an event field never reaches the log."""
    secrets = dsn_secrets("postgresql://svc:s3cret-pw@db/x")
    logger, handler = capture("psycopg.test-secret", JsonLineFormatter(secrets))
    logger.warning("cannot connect to postgresql://svc:s3cret-pw@db/x")
    log_event(logger, logging.WARNING, "heartbeat-failed", error="password s3cret-pw refused")
    assert all("s3cret-pw" not in line for line in handler.lines)
    assert json.loads(handler.lines[0])["message"] == "cannot connect to postgresql://svc:***@db/x"


def test_event_fields_cannot_overwrite_the_record_keys() -> None:
    """A field named like a record key (time, message) keeps the record's value."""
    logger, handler = capture("purgecache.test-clash")
    fields = {"time": "fake", "message": "fine", "extra_field": 1}
    log_event(logger, logging.INFO, "odd", **fields)
    record = json.loads(handler.lines[0])
    assert record["time"] != "fake" and (record["message"], record["extra_field"]) == ("fine", 1)


def test_uncaught_exceptions_are_logged_as_json() -> None:
    """After configure_logging an uncaught exception is one JSON line on stderr."""
    code = (
        "from purgecache.logformat import configure_logging\n"
        "configure_logging()\n"
        "raise RuntimeError('boom')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    )
    (line,) = result.stderr.splitlines()
    record = json.loads(line)
    assert record["level"] == "critical" and "RuntimeError: boom" in record["exception"]

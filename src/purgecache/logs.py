"""Structured log lines: one JSON object per line (rendered by `purgecache.logformat`)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec

# The record attribute holding `log_event`'s fields, for the formatter.
FIELDS_ATTRIBUTE = "purgecache_fields"


def log_event(logger: logging.Logger, level: int, event: str, **fields: object) -> None:
    """Log `event` with `fields`: one JSON line `{..., "event": event, **fields}` (values that
    are not JSON: as str)."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={FIELDS_ATTRIBUTE: fields})


class AccessLine(msgspec.Struct, tag_field="event", tag="request", omit_defaults=True, gc=False):
    """One request's access line: `{"event": "request", "method": ..., ...}`, its fields in
    this order, None as null, `hint` (why a request failed, for the operator) last and only
    when there is one. `duration_ms` is `round_ms` of the request's seconds.

    A struct, encoded with its whole batch in one call, because the line is paid on every
    request: building a dict and `orjson.dumps` per line cost about 7k instructions, this
    about 4k (about 2k to make, about 2k in the batch's `encode_lines`).
    """

    method: str
    route: str
    status: int
    duration_ms: float
    client_id: str | None
    client_ip: str | None
    request_id: str
    hint: str | None = None


def round_ms(seconds: float) -> float:
    """Milliseconds with at most 3 decimals: whole microseconds, rounded to nearest (ties to
    even). Adding and taking away 1.5 * 2**52 rounds a double to a whole number in two
    float operations (`int(x + 0.5)` cost twice as much, `round(x, 3)` a correctly rounded
    decimal conversion: a fifth of an access line). The hot path writes this expression
    inline; a test checks that the two agree."""
    return (seconds * 1e6 + 6755399441055744.0 - 6755399441055744.0) / 1000


# Lines are JSON; a value that is not (an object in a log_event field) is written as its str.
_ENCODER = msgspec.json.Encoder(enc_hook=str)


def encode_lines(items: list[Any]) -> bytes:
    """Each item as one JSON line (each ending in a newline), in one call; an item that cannot
    be encoded at all (a value whose str() raises) becomes an `unloggable` line, not a lost
    batch."""
    try:
        return _ENCODER.encode_lines(items)
    except Exception:  # a value's own __str__ may raise anything
        lines = []
        for item in items:
            try:
                lines.append(_ENCODER.encode(item))
            except Exception as error:
                lines.append(_ENCODER.encode({"event": "unloggable", "error": str(error)}))
        return b"".join(line + b"\n" for line in lines)


class LineBatcher:
    """JSON lines for one logger, written together once per turn of the event loop, or with a
    `delay` at most that long after they were added (or as soon as `max_lines` wait).

    A busy server answers many requests per turn; one write per turn instead of one per
    request keeps audit lines cheap, and one write per `delay` keeps access lines cheaper
    still (a write(2) per turn cost about as much as the lines themselves). Each line is still
    one JSON object on its own line, in the order they were added. Lines are kept as the
    values given (a dict, an `AccessLine`) and encoded together when the batch is written.

    A batch skips the logging machinery (a LogRecord and the caller lookup cost about 6 µs,
    more than the lines themselves when a turn answers one request) where that changes
    nothing: a handler that is a plain `StreamHandler`/`FileHandler` with no filters, whose
    formatter leaves a JSON line as it is, gets the batch written straight to its stream
    under its lock. Any other handler (pytest's capture, a formatter that adds fields) gets
    one ordinary record per batch, as before.
    """

    def __init__(
        self,
        logger: logging.Logger,
        level: int = logging.INFO,
        delay: float = 0.0,
        max_lines: int = 256,
    ) -> None:
        self.logger = logger
        self.level = level
        self.delay = delay  # seconds a line may wait for the next write (0: end of the turn)
        self.max_lines = max_lines  # a batch this long is written at once
        # The queued lines. `flush` swaps in a new list, so read it anew for every line.
        self.lines: list[Any] = []
        # handler -> (its formatter when checked, whether lines pass through it unchanged)
        self._verdicts: dict[logging.Handler, tuple[logging.Formatter | None, bool]] = {}

    @property
    def enabled(self) -> bool:
        """Whether lines would be written at all."""
        return self.logger.isEnabledFor(self.level)

    def add(self, line: dict[str, object] | AccessLine) -> None:
        """Queue one line (its fields: a dict, or an `AccessLine`); it is written at the end of
        this turn of the running loop, or after the delay. A full batch is written at once.

        A caller that adds a line per request may do what this does inline (the call cost a
        tenth of an access line): read `lines`; if it is empty, append only if `begin()`
        says so; flush when it is full."""
        lines = self.lines
        if lines or self.begin():
            lines.append(line)
            if len(lines) >= self.max_lines:
                self.flush()

    def begin(self) -> bool:
        """For a batch's first line: schedule its write and say whether the logger takes lines
        at all (False: drop the line). Asked only here (asked for every line, it cost a tenth
        of an access line), so a change of the logger's level applies from the next batch."""
        if not self.enabled:
            return False
        self._schedule()
        return True

    def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        if self.delay:
            loop.call_later(self.delay, self.flush)
        else:
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what is queued now."""
        lines, self.lines = self.lines, []
        if lines:
            self._write(encode_lines(lines))

    def _write(self, data: bytes) -> None:
        """Write `data` (JSON lines, each ending in a newline) to the logger's handlers: as it
        is to the streams of those that pass lines through, else as one record's message."""
        logger = self.logger
        if logger.disabled or logger.filters:
            logger.log(self.level, _message(data))
            return
        record: logging.LogRecord | None = None
        found = False
        node: logging.Logger | None = logger
        while node is not None:
            for handler in node.handlers:
                found = True
                if self.level < handler.level:
                    continue
                if self._passes_through(handler):
                    record = self._write_to_stream(handler, data, record)
                else:
                    record = record or self._record(_message(data))
                    handler.handle(record)
            node = node.parent if node.propagate else None
        if not found:  # what logging does without handlers: the last resort (stderr)
            logger.log(self.level, _message(data))

    def _record(self, text: str) -> logging.LogRecord:
        return self.logger.makeRecord(self.logger.name, self.level, "", 0, text, (), None)

    def _passes_through(self, handler: logging.Handler) -> bool:
        """Whether `handler` writes a JSON line to its stream exactly as it is (checked with
        a probe line once per handler and formatter)."""
        formatter = handler.formatter
        verdict = self._verdicts.get(handler)
        if verdict is None or verdict[0] is not formatter:
            verdict = (formatter, self._probe(handler))
            self._verdicts[handler] = verdict
        return verdict[1] and not handler.filters and getattr(handler, "stream", None) is not None

    def _probe(self, handler: logging.Handler) -> bool:
        if type(handler) not in (logging.StreamHandler, logging.FileHandler):
            return False
        probe = '{"event":"probe"}'
        try:
            return (handler.formatter or logging.Formatter()).format(self._record(probe)) == probe
        except Exception:  # a formatter that cannot take it: leave it to logging
            return False

    def _write_to_stream(
        self, handler: logging.Handler, data: bytes, record: logging.LogRecord | None
    ) -> logging.LogRecord | None:
        """Write the batch to the handler's stream: its bytes straight to the stream's binary
        buffer when the stream is UTF-8 text (a file, stderr), which saves decoding the batch,
        copying it twice and encoding it back; else as text."""
        assert isinstance(handler, logging.StreamHandler) and handler.lock is not None
        with handler.lock:
            try:
                stream = handler.stream
                raw = getattr(stream, "buffer", None)
                encoding = getattr(stream, "encoding", None)
                if raw is not None and handler.terminator == "\n" and encoding in _UTF8:
                    stream.flush()  # what others wrote through the text layer goes first
                    raw.write(data)
                    raw.flush()
                else:
                    stream.write(_message(data) + handler.terminator)
                    stream.flush()
            except Exception:  # as StreamHandler.emit does: report it, keep serving
                record = record or self._record(_message(data))
                handler.handleError(record)
        return record


_UTF8 = frozenset({"utf-8", "UTF-8", "utf8", "UTF8"})  # how streams name it


def _message(data: bytes) -> str:
    """The batch as one log message: its lines without the last newline."""
    return data[:-1].decode()

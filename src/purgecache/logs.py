"""Structured log lines: one JSON object per line (rendered by `purgecache.logformat`)."""

from __future__ import annotations

import asyncio
import logging

import orjson

# The record attribute holding `log_event`'s fields, for the formatter.
FIELDS_ATTRIBUTE = "purgecache_fields"


def log_event(logger: logging.Logger, level: int, event: str, **fields: object) -> None:
    """Log `event` with `fields`: one JSON line `{..., "event": event, **fields}` (values that
    are not JSON: as str)."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={FIELDS_ATTRIBUTE: fields})


class LineBatcher:
    """JSON lines for one logger, written together once per turn of the event loop, or with a
    `delay` at most that long after they were added (or as soon as `max_lines` wait).

    A busy server answers many requests per turn; one write per turn instead of one per
    request keeps audit lines cheap, and one write per `delay` keeps access lines cheaper
    still (a write(2) per turn cost about as much as the lines themselves). Each line is still
    one JSON object on its own line, in the order they were added.

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
        self._lines: list[bytes] = []
        # handler -> (its formatter when checked, whether lines pass through it unchanged)
        self._verdicts: dict[logging.Handler, tuple[logging.Formatter | None, bool]] = {}

    @property
    def enabled(self) -> bool:
        """Whether lines would be written at all."""
        return self.logger.isEnabledFor(self.level)

    def add(self, fields: dict[str, object]) -> None:
        """Queue one line; it is written at the end of this turn of the running loop."""
        if self._lines or self.enabled:
            self._queue(orjson.dumps(fields, default=str))

    def add_request(
        self,
        method: str,
        route: str,
        status: int,
        elapsed: float,
        client_id: str | None,
        client_ip: str | None,
        request_id: str,
        hint: str | None = None,
    ) -> None:
        """Queue the access line of one request that took `elapsed` seconds.

        Its fields and their order are the access log's; duration_ms has 3 decimals, taken
        from whole microseconds (`round(x, 3)` costs a correctly rounded decimal conversion,
        about a fifth of the line). A `hint` (why a request failed, for the operator) comes
        last, only when there is one.
        """
        if not (self._lines or self.enabled):
            return
        line: dict[str, object] = {
            "event": "request",
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": int(elapsed * 1_000_000 + 0.5) / 1000,
            "client_id": client_id,
            "client_ip": client_ip,
            "request_id": request_id,
        }
        if hint is not None:
            line["hint"] = hint
        self._queue(orjson.dumps(line))

    def _queue(self, line: bytes) -> None:
        """Keep a line for the next write, which is scheduled by the first line of a batch;
        a full batch is written at once. Whether the logger takes lines is asked before a
        batch's first line only (the `add` methods: asked for every line, it cost a tenth of
        an access line): a change of its level applies from the next batch."""
        lines = self._lines
        if not lines:
            self._schedule()
        lines.append(line)
        if len(lines) >= self.max_lines:
            self.flush()

    def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        if self.delay:
            loop.call_later(self.delay, self.flush)
        else:
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what is queued now."""
        lines, self._lines = self._lines, []
        if lines:
            self._write(b"\n".join(lines).decode())

    def _write(self, text: str) -> None:
        logger = self.logger
        if logger.disabled or logger.filters:
            logger.log(self.level, text)
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
                    record = self._write_to_stream(handler, text, record)
                else:
                    record = record or self._record(text)
                    handler.handle(record)
            node = node.parent if node.propagate else None
        if not found:  # what logging does without handlers: the last resort (stderr)
            logger.log(self.level, text)

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
        self, handler: logging.Handler, text: str, record: logging.LogRecord | None
    ) -> logging.LogRecord | None:
        assert isinstance(handler, logging.StreamHandler) and handler.lock is not None
        with handler.lock:
            try:
                stream = handler.stream
                stream.write(text + handler.terminator)
                stream.flush()
            except Exception:  # as StreamHandler.emit does: report it, keep serving
                record = record or self._record(text)
                handler.handleError(record)
        return record

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
    """JSON lines for one logger, written together once per turn of the event loop.

    A busy server answers many requests per turn; one logging record (one write to stderr)
    per turn instead of one per request keeps access and audit logs cheap. Each line is still
    one JSON object on its own line, in the order they were added.
    """

    def __init__(self, logger: logging.Logger, level: int = logging.INFO) -> None:
        self.logger = logger
        self.level = level
        self._lines: list[bytes] = []

    @property
    def enabled(self) -> bool:
        """Whether lines would be written at all."""
        return self.logger.isEnabledFor(self.level)

    def add(self, fields: dict[str, object]) -> None:
        """Queue one line; it is written at the end of this turn of the running loop."""
        if not self.logger.isEnabledFor(self.level):
            return
        if not self._lines:
            asyncio.get_running_loop().call_soon(self.flush)
        self._lines.append(orjson.dumps(fields, default=str))

    def flush(self) -> None:
        """Write what is queued now."""
        lines, self._lines = self._lines, []
        if lines:
            self.logger.log(self.level, b"\n".join(lines).decode())

"""Structured log lines: one JSON object per line."""

from __future__ import annotations

import logging

import orjson


def log_event(logger: logging.Logger, level: int, event: str, **fields: object) -> None:
    """Log `{"event": event, **fields}` as one JSON line (values that are not JSON: as str)."""
    if logger.isEnabledFor(level):
        logger.log(level, orjson.dumps({"event": event, **fields}, default=str).decode())

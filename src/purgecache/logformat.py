"""Every log record on stderr as one JSON object per line: ours, granian's, psycopg's, Python's.

One handler on the root logger renders every record (the idea of structlog's
`ProcessorFormatter`, whose foreign records go through the same renderer):

- records from `log_event` carry their fields: `{"time", "level", "logger", "event", ...}`;
- any other record (another library's, a plain `log.info`) becomes
  `{"time", "level", "logger", "message"}`;
- an exception is the field `exception` (its traceback as one string), never extra lines;
- the access and audit loggers' records are already JSON lines (several per record, from
  `LineBatcher`) and are written as they are: no parsing, no encoding.

Known secrets (the database password) are scrubbed from every record rendered here.
granian configures logging itself in the main process and in each worker; it is handed
`logging_config` so that both end up the same.
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
import threading
import time
from types import TracebackType
from typing import Any

from purgecache.logs import FIELDS_ATTRIBUTE
from purgecache.redact import scrub

# Loggers whose records hold finished JSON lines (one per request or purge, `\n`-joined).
PRERENDERED_LOGGERS = frozenset({"purgecache.access", "purgecache.audit"})

log = logging.getLogger("purgecache")


class JsonLineFormatter(logging.Formatter):
    """A record as one JSON object on one line (several finished lines pass through as is)."""

    def __init__(
        self,
        secrets: tuple[str, ...] = (),
        prerendered: frozenset[str] = PRERENDERED_LOGGERS,
    ) -> None:
        super().__init__()
        self.secrets = secrets
        self.prerendered = prerendered

    def format(self, record: logging.LogRecord) -> str:
        if record.name in self.prerendered:
            return str(record.msg)
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = record.__dict__.get(FIELDS_ATTRIBUTE)
        if fields is None:
            entry["message"] = record.getMessage()
        else:
            entry["event"] = record.msg
            entry.update((k, v) for k, v in fields.items() if k not in entry)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        text = json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=str)
        return scrub(text, self.secrets)


def logging_config(secrets: tuple[str, ...] = (), level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` dictionary: one JSON handler on stderr for everything.

    Our loggers and granian's log from `level`; other libraries from WARNING (psycopg_pool's
    connection failures are warnings; httpx's one line per request is not wanted).
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonLineFormatter, "secrets": secrets}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
        "loggers": {
            name: {"handlers": [], "level": level, "propagate": True}
            for name in ("purgecache", "_granian")
        },
    }


def configure_logging(secrets: tuple[str, ...] = (), level: str = "INFO") -> dict[str, Any]:
    """Send every record, warnings and uncaught exceptions to stderr as JSON lines.

    Returns the configuration, for granian to apply again in its processes.
    """
    config = logging_config(secrets, level)
    logging.config.dictConfig(config)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    return config


def _log_uncaught(
    kind: type[BaseException], error: BaseException, traceback: TracebackType | None
) -> None:
    log.critical("uncaught exception", exc_info=(kind, error, traceback))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        _log_uncaught(args.exc_type, args.exc_value, args.exc_traceback)

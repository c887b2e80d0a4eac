"""The agent's configuration: one frozen object, built by the CLI (flag > environment variable >
default). The connection to the service is not here: it comes from the `TASKCLUSTER_*`
variables, as for every Taskcluster client."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path

# How far the worker's and the service's clocks (and the service's replicas and its answer
# cache) may disagree: the slack of each sync's `since`, and the error of a creation time
# taken before any sync measured the service's clock.
DEFAULT_CLOCK_SKEW_MS = 5 * 60_000
DEFAULT_INTERVAL_MS = 5 * 60_000  # `run`: between syncs, jittered ±20 %
DEFAULT_TIMEOUT_MS = 10_000  # each attempt to reach the service
DEFAULT_REPORT_INTERVAL_MS = 5 * 60_000  # between reports when nothing changed
DEFAULT_WORKER_GROUP = "local"


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """What the agent commands need besides the `TASKCLUSTER_*` connection."""

    cache_root: Path
    pool: str = ""
    clock_skew_ms: int = DEFAULT_CLOCK_SKEW_MS
    interval_ms: int = DEFAULT_INTERVAL_MS
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    deadline_ms: int | None = None  # `sync`: for the whole fetch, retries included
    worker_group: str = DEFAULT_WORKER_GROUP
    worker_id: str = ""  # "" until the CLI sets it (default: from the hostname)
    report_interval_ms: int = DEFAULT_REPORT_INTERVAL_MS


_NOT_ID = re.compile(r"[^A-Za-z0-9_-]")
WORKER_ID_LENGTH = 38


def default_worker_id(hostname: str | None = None) -> str:
    """The hostname's first label, characters outside `[A-Za-z0-9_-]` made `-`, cut to 38
    (`worker` if nothing is left)."""
    label = (socket.gethostname() if hostname is None else hostname).split(".")[0]
    return _NOT_ID.sub("-", label)[:WORKER_ID_LENGTH] or "worker"

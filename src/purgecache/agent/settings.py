"""The agent's configuration: one frozen object, built by the CLI (flag > environment variable >
default). The connection to the service is not here: it comes from the `TASKCLUSTER_*`
variables, as for every Taskcluster client."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# How far the worker's and the service's clocks (and the service's replicas and its answer
# cache) may disagree: the slack of each sync's `since`, and the error of a creation time
# taken before any sync measured the service's clock.
DEFAULT_CLOCK_SKEW_MS = 5 * 60_000
DEFAULT_INTERVAL_MS = 5 * 60_000  # `run`: between syncs, jittered ±20 %
DEFAULT_TIMEOUT_MS = 10_000  # each attempt to reach the service


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """What the agent commands need besides the `TASKCLUSTER_*` connection."""

    cache_root: Path
    pool: str = ""
    clock_skew_ms: int = DEFAULT_CLOCK_SKEW_MS
    interval_ms: int = DEFAULT_INTERVAL_MS
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    deadline_ms: int | None = None  # `sync`: for the whole fetch, retries included

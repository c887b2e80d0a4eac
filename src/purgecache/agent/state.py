"""The agent's memory between runs (`state.json`): per worker pool, the watermark (the
service's time up to which every purge request has been handled), and the last measurement of
the service's clock."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from purgecache.agent.clock import ClockAnchor
from purgecache.agent.files import CorruptFile, read_json, write_json_atomic
from purgecache.model import format_time, parse_since

STATE_VERSION = 1
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AgentState:
    """Watermarks (ms, service clock) by worker pool id, and the service clock anchor."""

    watermarks: dict[str, int] = field(default_factory=dict)
    anchor: ClockAnchor | None = None

    def advanced(self, pool: str, watermark: int | None, anchor: ClockAnchor | None) -> AgentState:
        """The state after a sync of `pool` whose answer said `watermark` (None: keep the old
        one). The newest answer wins even when it is older than the stored watermark: asking
        from further back is always safe (a concurrent sync that fetched earlier but saved
        later), and it follows a service whose clock was set back."""
        watermarks = dict(self.watermarks)
        if watermark is not None:
            watermarks[pool] = watermark
        return replace(self, watermarks=watermarks, anchor=anchor or self.anchor)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "watermarks": {pool: format_time(ms) for pool, ms in sorted(self.watermarks.items())},
            "clock": None if self.anchor is None else self.anchor.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AgentState:
        if data.get("version") != STATE_VERSION:
            raise CorruptFile(f"unknown state version {data.get('version')!r}")
        marks = data.get("watermarks", {})
        if not isinstance(marks, dict):
            raise CorruptFile("watermarks should be an object")
        try:
            watermarks = {str(pool): parse_since(str(text)) for pool, text in marks.items()}
        except ValueError as error:
            raise CorruptFile(f"bad watermark: {error}") from error
        return cls(watermarks, ClockAnchor.from_json(data.get("clock")))


def load_state(path: Path) -> AgentState:
    """The stored state; an empty one if there is none yet, or if it cannot be read.

    Forgetting is safe: without a watermark the next sync asks for every open purge request
    (a superset), without an anchor creation times get the large error of the worker's clock.
    """
    try:
        data = read_json(path)
        return AgentState() if data is None else AgentState.from_json(data)
    except (CorruptFile, OSError) as error:
        log.warning("ignoring unreadable agent state (it will be rewritten): %s", error)
        return AgentState()


def save_state(path: Path, state: AgentState) -> None:
    """Store the state, atomically but without waiting for the disk: losing the latest
    state in a power loss only makes the next sync ask from an older watermark (what it
    was for is recorded durably in the cache records first)."""
    write_json_atomic(path, state.to_json(), durable=False)

"""Fakes of the agent's collaborators: the worker's clocks and the purge-cache service."""

from __future__ import annotations

from dataclasses import dataclass, field

from purgecache.agent.clock import measure
from purgecache.agent.fetch import Fetched, ServiceRefused, ServiceUnreachable

START_MS = 1_800_000_000_000  # 2027-01-15


@dataclass
class FakeClock:
    """The worker's clocks, moved by hand: wall clock, monotonic clock and boot id."""

    wall: int = START_MS
    elapsed: int = 5_000_000_000_000  # ns since boot
    boot: str = "boot-1"

    def wall_ms(self) -> int:
        return self.wall

    def elapsed_ns(self) -> int:
        return self.elapsed

    def boot_id(self) -> str:
        return self.boot

    def advance(self, ms: int) -> None:
        """Let `ms` milliseconds pass (both clocks)."""
        self.wall += ms
        self.elapsed += ms * 1_000_000

    def reboot(self, boot: str = "boot-2") -> None:
        """A new boot: the monotonic clock starts again."""
        self.boot, self.elapsed = boot, 1_000_000_000


@dataclass
class FakeService:
    """The purge-cache service as `sync_once` sees it: open purge requests per cache name,
    its own clock (`offset_ms` ahead of the worker's wall clock), and a log of the `since`
    of every call.

    `down` makes calls fail as unreachable, `refuse` as refused; `send_date=False` answers
    without a Date header; `date_shift_ms` moves the Date header alone (a lying proxy).
    """

    clock: FakeClock
    offset_ms: int = 0
    purges: dict[str, int] = field(default_factory=dict)
    calls: list[int | None] = field(default_factory=list)
    down: bool = False
    refuse: bool = False
    send_date: bool = True
    date_shift_ms: int = 0

    def now(self) -> int:
        return self.clock.wall + self.offset_ms

    def purge(self, cache_name: str) -> int:
        """A purge request for `cache_name` now; returns its `before`."""
        self.purges[cache_name] = self.now()
        return self.purges[cache_name]

    def __call__(self, pool: str, since: int | None) -> Fetched:
        self.calls.append(since)
        if self.down:
            raise ServiceUnreachable("could not reach the fake service")
        if self.refuse:
            raise ServiceRefused("purgeRequests: 403 InsufficientScopes")
        requests = tuple(
            (name, before)
            for name, before in sorted(self.purges.items())
            if since is None or before >= since
        )
        if not self.send_date:
            return Fetched(requests, None, None)
        date = self.now() + self.date_shift_ms
        date -= date % 1000
        elapsed = self.clock.elapsed
        return Fetched(requests, date, measure(date, elapsed, elapsed, self.clock.boot))

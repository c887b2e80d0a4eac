"""One process of the race test, run as `python race_worker.py MODE ROOT ROUNDS ID`.

`task`: mount the cache `shared`, claim it by writing an owner file, check several times that
the instance is still there and still ours, release; a violation is printed and exits 1.
`sync`: apply a purge of `shared` with `before` = now, again and again.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

from purgecache.agent import CacheRegistry, sync_once
from purgecache.agent.clock import SystemClock, measure
from purgecache.agent.fetch import Fetched


def purge_everything_now(pool: str, since: int | None) -> Fetched:
    clock = SystemClock()
    now = clock.wall_ms()
    elapsed = clock.elapsed_ns()
    return Fetched(
        (("shared", now),), now, measure(now - now % 1000, elapsed, elapsed, clock.boot_id())
    )


def task(registry: CacheRegistry, rounds: int, me: str) -> None:
    for _ in range(rounds):
        path = registry.mount("shared")
        (path / "owner").write_text(me)
        for _ in range(3):
            time.sleep(random.uniform(0, 0.004))
            owner = (path / "owner").read_text() if (path / "owner").exists() else None
            if owner != me:
                sys.exit(f"{path} changed under task {me}: owner {owner!r}")
        registry.release(path)


def sync(registry: CacheRegistry, rounds: int) -> None:
    for _ in range(rounds):
        report = sync_once(registry, purge_everything_now, "race/pool")
        if report.problems:
            sys.exit(f"sync problems: {report.problems}")
        time.sleep(random.uniform(0, 0.004))


def main() -> None:
    mode, root, rounds, me = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    registry = CacheRegistry(root)
    if mode == "task":
        task(registry, rounds, me)
    else:
        sync(registry, rounds)


if __name__ == "__main__":
    main()

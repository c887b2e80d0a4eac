"""Several agent processes on one cache root at once: tasks mounting and releasing while
syncs purge the same cache, with real processes, locks and renames."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from agent.race_worker import purge_everything_now
from purgecache.agent import CacheRegistry, sync_once

RACE_WORKER = Path(__file__).with_name("race_worker.py")


def test_mount_release_and_sync_racing_never_share_or_pull_an_instance(
    tmp_path: Path,
) -> None:
    """Six task processes and two sync processes hammer one root: no instance is ever held
    by two tasks or deleted under one, no sync meets a problem, and afterwards nothing is
    left in use or in the trash."""
    root = tmp_path / "root"
    processes = [
        subprocess.Popen(
            [sys.executable, str(RACE_WORKER), mode, str(root), "40", f"{mode}-{i}"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for mode, count in (("task", 6), ("sync", 2))
        for i in range(count)
    ]
    failures = []
    for process in processes:
        _, errors = process.communicate(timeout=180)
        if process.returncode != 0:
            failures.append(errors)
    assert failures == []

    registry = CacheRegistry(root)
    assert all(info.record and info.record.lease is None for info in registry.instances())
    report = sync_once(registry, purge_everything_now, "race/pool")
    assert report.problems == () and registry.instances() == []
    assert registry.trash.leftovers() == []
    names = sorted(p.name for p in root.iterdir())
    assert names == ["agent.lock", "caches", "reserve", "state.json", "trash"]

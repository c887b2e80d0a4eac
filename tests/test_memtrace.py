"""The worker's memory snapshots on demand (`purgecache.memtrace`, used by bench/memory)."""

from __future__ import annotations

import os
import signal
import tracemalloc
from pathlib import Path

import pytest

from purgecache import memtrace


def test_memtrace_is_off_without_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without PURGECACHE_TRACEMALLOC nothing is traced and SIGUSR1 is left alone."""
    monkeypatch.delenv(memtrace.ENVIRONMENT_VARIABLE, raising=False)
    assert memtrace.install_from_environment() is None
    assert not tracemalloc.is_tracing()


def test_memtrace_writes_a_snapshot_on_sigusr1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With PURGECACHE_TRACEMALLOC=<folder>, SIGUSR1 writes a loadable snapshot and its facts."""
    monkeypatch.setenv(memtrace.ENVIRONMENT_VARIABLE, str(tmp_path / "snaps"))
    previous = signal.getsignal(signal.SIGUSR1)
    try:
        snapshots = memtrace.install_from_environment()
        assert snapshots is not None
        os.kill(os.getpid(), signal.SIGUSR1)
        (dump,) = (tmp_path / "snaps").glob("*.tracemalloc")
        assert tracemalloc.Snapshot.load(str(dump)).traces
        assert '"traced_bytes"' in dump.with_suffix(".json").read_text()
    finally:
        tracemalloc.stop()
        signal.signal(signal.SIGUSR1, previous)

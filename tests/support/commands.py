"""Running `purgecache` commands as an operator does, and reading what they print."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`purgecache ARGS...` to its end, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "purgecache", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def json_records(text: str) -> list[dict[str, object]]:
    """Every line of a server's output as a JSON object (fails on any other line)."""
    records = [json.loads(line) for line in text.splitlines()]
    assert all(isinstance(record, dict) for record in records)
    for record in records:
        if record.get("event") not in ("request", "purge"):  # batched lines: their own fields
            assert {"time", "level", "logger"} <= set(record)
            assert record.keys() & {"event", "message"}
    return records


def startup_failure(result: subprocess.CompletedProcess[str]) -> str:
    """The error of a `serve` that refused to start: its last JSON log line (all are JSON)."""
    assert result.returncode == 1, result.stderr
    records = json_records(result.stderr)
    assert records[-1]["event"] == "startup-failed"
    return str(records[-1]["error"])

"""The selector matcher's one table of cases (tests/data/selector_cases.json), read by the tests
of every place that matches: the matcher itself, the service's selector and expansion, the
agent's local matching and the CLI's usage errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TABLE: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "selector_cases.json").read_text("utf-8")
)
CASES: list[dict[str, Any]] = TABLE["cases"]
MATCHING = [case for case in CASES if "error" not in case]
REFUSED = [case for case in CASES if "error" in case]


def case_id(case: dict[str, Any]) -> str:
    return f"{case['kind']}:{case['pattern']!r}"

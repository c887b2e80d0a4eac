"""The `since` inputs a person may type and what they mean (tests/data/since_cases.json), read
by the CLI's tests and the admin page's: the two must agree on every row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SINCE_CASES: list[dict[str, Any]] = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "since_cases.json").read_text("utf-8")
)["cases"]


def case_id(case: dict[str, Any]) -> str:
    return repr(case["input"])

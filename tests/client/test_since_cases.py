"""`--since` of the CLI against the shared table of `since` inputs (tests/data/since_cases.json),
the one the admin page's tests read too. Run in process: `signed-url` needs no server."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from purgecache.cli import main
from purgecache.model import format_time, parse_since

from conftest import ADMIN
from support.since_cases import SINCE_CASES, case_id

ENV = {
    "TASKCLUSTER_ROOT_URL": "http://127.0.0.1:9",
    "TASKCLUSTER_CLIENT_ID": ADMIN[0],
    "TASKCLUSTER_ACCESS_TOKEN": ADMIN[1],
    "TASKCLUSTER_PROXY_URL": "",
}


@pytest.mark.parametrize("case", SINCE_CASES, ids=case_id)
def test_since_reads_the_shared_table(case: dict[str, Any]) -> None:
    """Each row: the instant the service is asked for, that long ago, or refused with help."""
    args = ["signed-url", "purge-requests", "proj-a/linux", "--since", case["input"]]
    started = int(time.time() * 1000)
    result = CliRunner().invoke(main, args, env=ENV)
    if case.get("rejected"):
        assert result.exit_code == 2, result.output
        assert "is not a time: use ISO 8601" in result.output
        return
    assert result.exit_code == 0, result.output
    (sent,) = parse_qs(urlsplit(result.output.strip()).query)["since"]
    if "instant" in case:
        assert format_time(parse_since(sent)) == case["instant"]
    else:
        ago = started - parse_since(sent)
        assert case["age_ms"] - 5_000 <= ago <= case["age_ms"] + 1, sent

"""`/metrics`: Prometheus counters summed over all worker processes."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx

from conftest import ADMIN, LiveServer
from hawk_signing import HawkAuth

ServerFactory = Callable[..., LiveServer]


def sample(text: str, name: str, labels: str = "") -> float:
    """The value of one sample in the exposition text (0 when absent)."""
    pattern = re.escape(name + (("{" + labels + "}") if labels else "")) + r" ([0-9.e+]+)"
    found = re.search(pattern, text)
    return float(found[1]) if found else 0.0


def test_metrics_count_requests_across_workers(backend_server_factory: ServerFactory) -> None:
    """Requests, purges, cache hits/misses and open requests add up over two workers."""
    live = backend_server_factory("--workers", "2", "--cache-time", "300s")
    for _ in range(10):  # start-up's readiness pings are counted too: at least these 10
        assert httpx.get(f"{live.api}/ping").status_code == 200
    auth = HawkAuth(*ADMIN)
    pool = f"{live.api}/purge-cache/metrics%2Fpool"
    assert httpx.post(pool, json={"cacheName": "c"}, auth=auth).status_code == 204
    for _ in range(6):
        assert httpx.get(pool, auth=auth).status_code == 200
    assert httpx.get(f"{live.api}/purge-cache/oops/pool/x", auth=auth).status_code == 400
    fetched = 'endpoint="purgeRequests",status="200"'

    def metrics() -> str:
        response = httpx.get(f"{live.root_url}/metrics")
        assert response.headers["content-type"].startswith("text/plain")
        return response.text

    def handed_over(text: str) -> bool:  # every count below, from whichever worker it is on
        return (
            sample(text, "purgecache_requests_total", fetched) >= 6
            and sample(text, "purgecache_requests_total", 'endpoint="ping",status="200"') >= 10
            and sample(text, "purgecache_purges_accepted_total") >= 1
            and sample(text, "purgecache_requests_total", fetched.replace("200", "400")) >= 1
        )

    # Each worker hands its tallies to the shared files once a second: wait for both.
    deadline = time.monotonic() + 15
    while not handed_over(metrics()):
        assert time.monotonic() < deadline, metrics()
        time.sleep(0.1)
    for _ in range(4):  # whichever worker answers, the totals are the same
        text = metrics()
        assert sample(text, "purgecache_requests_total", fetched) == 6
        assert sample(text, "purgecache_requests_total", 'endpoint="ping",status="200"') >= 10
        assert sample(text, "purgecache_purges_accepted_total") == 1
        hits = sample(text, "purgecache_pool_cache_total", 'result="hit"')
        misses = sample(text, "purgecache_pool_cache_total", 'result="miss"')
        assert hits + misses == 6 and misses >= 1
        assert sample(text, "purgecache_open_purge_requests") == 1
        assert (
            sample(text, "purgecache_requests_total", 'endpoint="purgeRequests",status="400"') == 1
        )
        assert "purgecache_request_duration_seconds_bucket" in text

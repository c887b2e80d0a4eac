"""Prometheus metrics, served at `/metrics` on the API port.

With several worker processes the values are kept in prometheus_client's multiprocess files
(`serve` points PROMETHEUS_MULTIPROC_DIR at a private temporary directory before the workers
start), so every scrape shows the sum over all workers whichever worker answers it.

The request path only adds to plain in-process tallies; `flush` hands them to
prometheus_client (about once a second, and before this process answers a scrape), so a
scrape may lag other workers by up to a second.
"""

from __future__ import annotations

import bisect
import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class Metrics:
    """The service's counters and histograms, with label children cached for the hot path."""

    def __init__(self) -> None:
        # prometheus_client picks its value store when first imported, which may have happened
        # in the parent before PROMETHEUS_MULTIPROC_DIR was set: pick again for this process.
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "purgecache_requests",
            "HTTP requests by endpoint and status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "purgecache_request_duration_seconds",
            "Time to answer, by endpoint",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.purges = Counter(
            "purgecache_purges_accepted",
            "Purge requests stored (204 answers)",
            registry=self.registry,
        )
        self.cache = Counter(
            "purgecache_pool_cache",
            "purgeRequests answers from the per-pool cache (hit) or the database (miss)",
            ["result"],
            registry=self.registry,
        )
        self.storage_errors = Counter(
            "purgecache_storage_errors",
            "Database operations that failed",
            registry=self.registry,
        )
        self.expiry_runs = Counter(
            "purgecache_expiry_runs", "Expiry runs that did the work", registry=self.registry
        )
        self.expired_rows = Counter(
            "purgecache_expired_rows", "Purge requests deleted by expiry", registry=self.registry
        )
        self.fast_path = Counter(
            "purgecache_fast_path_answers",
            "Successful answers given by the fast path, by endpoint",
            ["endpoint"],
            registry=self.registry,
        )
        self.event_deliveries = Counter(
            "purgecache_event_deliveries",
            "Event delivery attempts by kind of target (amqp, webhook) and result (ok, failed)",
            ["target", "result"],
            registry=self.registry,
        )
        self._fast: dict[str, int] = {}
        self.cache_hits = 0
        self.cache_misses = 0
        self.purges_accepted = 0
        # (endpoint, status) -> [count, sum of seconds, count per latency bucket (+Inf last)]
        self._pending: dict[tuple[str, int], list[Any]] = {}

    def cache_hit(self) -> None:
        """A purgeRequests answer came from the per-pool cache."""
        self.cache_hits += 1

    def cache_miss(self) -> None:
        """A purgeRequests answer needed the database."""
        self.cache_misses += 1

    def observe_request(self, endpoint: str, status: int, seconds: float, fast: bool) -> None:
        """Count one answered request and its latency (a few dict operations, no I/O); `fast`:
        a success the fast path gave."""
        if fast:
            self._fast[endpoint] = self._fast.get(endpoint, 0) + 1
        tally = self._pending.get((endpoint, status))
        if tally is None:
            tally = self._pending[(endpoint, status)] = [0, 0.0, [0] * (len(_LATENCY_BUCKETS) + 1)]
        tally[0] += 1
        tally[1] += seconds
        tally[2][bisect.bisect_left(_LATENCY_BUCKETS, seconds)] += 1

    def flush(self) -> None:
        """Hand the tallies to prometheus_client."""
        fast, self._fast = self._fast, {}
        for endpoint, count in fast.items():
            self.fast_path.labels(endpoint).inc(count)
        pending, self._pending = self._pending, {}
        for (endpoint, status), (count, total, buckets) in pending.items():
            self.requests.labels(endpoint, str(status)).inc(count)
            histogram = self.latency.labels(endpoint)
            histogram._sum.inc(total)  # prometheus_client has no bulk observe
            for index, hits in enumerate(buckets):
                if hits:
                    histogram._buckets[index].inc(hits)
        for child, attribute in (
            (self.cache.labels("hit"), "cache_hits"),
            (self.cache.labels("miss"), "cache_misses"),
            (self.purges, "purges_accepted"),
        ):
            count = getattr(self, attribute)
            if count:
                child.inc(count)
                setattr(self, attribute, 0)

    def event_delivery(self, target: str, ok: bool) -> None:
        """Count one delivery attempt to `target` (`amqp` or `webhook:<url>`)."""
        self.event_deliveries.labels(target.partition(":")[0], "ok" if ok else "failed").inc()

    def render(self, open_requests: int | None, outbox: tuple[int, int] | None = None) -> bytes:
        """The exposition text; `open_requests` and the `outbox` depth (pending, failed
        deliveries) are counted by the caller at scrape time."""
        self.flush()
        registry = self.registry
        if os.environ.get(MULTIPROC_ENV):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        text = generate_latest(registry)
        gauges = []
        if open_requests is not None:
            gauges.append(
                GaugeMetricFamily(
                    "purgecache_open_purge_requests",
                    "Unexpired purge requests in the database",
                    value=open_requests,
                )
            )
        if outbox is not None:
            depth = GaugeMetricFamily(
                "purgecache_event_outbox_depth",
                "Event deliveries not yet made, by state (pending, failed)",
                labels=["state"],
            )
            depth.add_metric(["pending"], outbox[0])
            depth.add_metric(["failed"], outbox[1])
            gauges.append(depth)
        if gauges:
            scrape = CollectorRegistry()
            scrape.register(_Fixed(gauges))
            text += generate_latest(scrape)
        return text


class _Fixed:
    """A collector that yields the given metric families (for values computed per scrape)."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self) -> list[GaugeMetricFamily]:
        return self.families

"""How long `purgeStatus` takes for a pool of 10,000 workers (issue 13, item 5).

Not part of any test run. Seeds a database (SQLite file, or a scratch PostgreSQL database)
through the service's own storage code: one pool with `--workers` workers, 90% reporting
receipts for `--caches` cache names (of those, one in ten honours an older purge, one in
twenty has a copy in use) and 10% client ids that only fetch; one open purge per cache name.
Then starts `purgecache serve` on a loopback port and times, over HTTP with Hawk, the
`purgeStatus` answer for one cache name and for the whole pool, `--rounds` times each.
Prints the median and the worst per backend.

    .ci-work/venv/bin/python bench/purge_status.py [--workers 10000] [--caches 5] [--rounds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

from purgecache.client import Credentials, HawkAuth
from purgecache.model import CacheReceipt, WorkerReport
from purgecache.service import PurgeService
from purgecache.storage import open_storage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness.loopback import ADMIN, serve

POOL = "bench/status"
POSTGRES = os.environ.get(
    "PURGECACHE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


async def seed(db_url: str, workers: int, caches: int) -> None:
    storage = open_storage(db_url)
    await storage.upgrade()
    service = PurgeService(storage, retention_ms=30 * 86_400_000)
    names = [f"cache-{n}" for n in range(caches)]
    purges = {name: (await service.purge(POOL, name)).before for name in names}
    now = service.clock()
    reporters = workers * 9 // 10
    for start in range(0, reporters, 500):
        await asyncio.gather(
            *(
                storage.report_worker_sync(report(i, names, purges), now)
                for i in range(start, min(start + 500, reporters))
            )
        )
    fetched = max(purges.values())
    await storage.record_fetches(
        [(POOL, f"fetcher-{i}", fetched - (i % 2), now, 0) for i in range(workers - reporters)]
    )
    await storage.close()
    if db_url.startswith("postgresql"):  # as autovacuum would soon after such a bulk load
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("ANALYZE")


def report(i: int, names: list[str], purges: dict[str, int]) -> WorkerReport:
    behind, in_use = i % 10 == 0, int(i % 20 == 1)
    receipts = tuple(
        CacheReceipt(name, purges[name] - behind, 2, 1 << 20, 5_000, 0, in_use) for name in names
    )
    return WorkerReport(POOL, "bench", f"w{i}", receipts)


def timed(client: httpx.Client, url: str, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds + 2):
        started = time.perf_counter()
        answer = client.get(url)
        times.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.text
    return times[2:]  # the first two warm the connection and the server


def measure(db_url: str, data_dir: Path, workers: int, caches: int, rounds: int) -> None:
    asyncio.run(seed(db_url, workers, caches))
    process, root = serve(data_dir, "--db", db_url)
    try:
        base = f"{root}/api/purge-cache/v1/ext/status/{POOL.replace('/', '%2F')}"
        with httpx.Client(auth=HawkAuth(Credentials(*ADMIN)), timeout=30) as client:
            shape = client.get(f"{base}?cacheName=cache-0").json()["purges"][0]
            for label, url in (("one cache", f"{base}?cacheName=cache-0"), ("pool", base)):
                times = timed(client, url, rounds)
                print(
                    f"  {label:<10} median {statistics.median(times) * 1000:6.1f} ms"
                    f"  worst {max(times) * 1000:6.1f} ms"
                )
        print(f"  tally of cache-0: { {k: v for k, v in shape.items() if k != 'stragglers'} }")
    finally:
        process.terminate()
        process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=10_000)
    parser.add_argument("--caches", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--backends", default="sqlite,postgres")
    options = parser.parse_args()
    shape = (options.workers, options.caches, options.rounds)
    for backend in options.backends.split(","):
        print(f"{backend}: {options.workers:,} workers, {options.caches} open purges")
        with tempfile.TemporaryDirectory() as folder:
            if backend == "sqlite":
                measure(f"sqlite:///{Path(folder, 'purgecache.db')}", Path(folder), *shape)
                continue
            name = f"pcbench_status_{os.getpid()}"
            with psycopg.connect(POSTGRES, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            try:
                measure(POSTGRES.rsplit("/", 1)[0] + f"/{name}", Path(folder), *shape)
            finally:
                with psycopg.connect(POSTGRES, autocommit=True) as conn:
                    conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


if __name__ == "__main__":
    main()

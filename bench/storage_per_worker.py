"""Bytes of storage per worker (issue 13): what receipts, inventories and fetches cost.

Not part of any test run. On a fresh database per backend (SQLite file; scratch PostgreSQL
database), through the service's own storage code: `--workers` workers of one pool
(`us-east-1/i-<17 hex>`, as EC2 workers are named) each report a receipt and an inventory entry
for `--caches` cache names (the bench's real-sized names); then every worker reports again
`--passes` - 1 times, each time for a newer purge (rows replaced, as in steady state); then as
many client ids that only fetch (official generic-worker) are recorded once each. After each
stage it prints the size of the four tables that grow with workers (SQLite: `dbstat` pages after
a WAL checkpoint; PostgreSQL: `pg_total_relation_size`, heap + indexes + TOAST, after ANALYZE,
before any VACUUM) and the bytes per worker.

    .ci-work/venv/bin/python bench/storage_per_worker.py [--workers 10000] [--caches 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import psycopg

from purgecache.model import CacheInventory, CacheReceipt, WorkerReport
from purgecache.storage import open_storage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness.seed import POOL, POOL_CACHE_NAMES

TABLES = ("worker_receipts", "worker_reports", "worker_caches", "worker_fetches")
POSTGRES = os.environ.get(
    "PURGECACHE_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
NOW = 1_796_000_000_000  # a fixed moment (ms): sizes do not depend on when this runs
Sizes = Callable[[], dict[str, int]]


def cache_names(count: int) -> list[str]:
    """The bench's five real cache names, then more of the same length."""
    names = list(POOL_CACHE_NAMES[:count])
    names += [f"gecko-level-3-extra-cache-{n:05d}" for n in range(count - len(names))]
    return names


def report(index: int, names: list[str], honoured: int) -> WorkerReport:
    receipts = tuple(
        CacheReceipt(name, honoured, 1, 734_003_200, 86_400_000, 0, 0) for name in names
    )
    held = tuple(CacheInventory(name, 1, 734_003_200, NOW) for name in names)
    return WorkerReport(POOL, "us-east-1", f"i-{index:017x}", receipts, held)


async def seed_reports(db_url: str, workers: int, names: list[str], honoured: int) -> None:
    """Every worker reports once, 500 at a time."""
    storage = open_storage(db_url)
    try:
        for start in range(0, workers, 500):
            batch = range(start, min(start + 500, workers))
            await asyncio.gather(
                *(storage.report_worker_sync(report(i, names, honoured), NOW) for i in batch)
            )
    finally:
        await storage.close()


async def seed_fetches(db_url: str, workers: int) -> None:
    storage = open_storage(db_url)
    try:
        rows = [(POOL, f"project/ci/worker-{i:05d}", NOW, NOW, 0) for i in range(workers)]
        await storage.record_fetches(rows)
    finally:
        await storage.close()


async def upgrade(db_url: str) -> None:
    storage = open_storage(db_url)
    try:
        await storage.upgrade()
    finally:
        await storage.close()


def sqlite_sizes(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        rows = conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
    return {name: int(size) for name, size in rows if name in TABLES}


def postgres_sizes(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
        rows = conn.execute(
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relname = ANY(%s)",
            [list(TABLES)],
        ).fetchall()
    return {name: int(size) for name, size in rows}


def show(stage: str, sizes: dict[str, int], empty: dict[str, int], workers: int) -> None:
    grown = {table: sizes.get(table, 0) - empty.get(table, 0) for table in TABLES}
    per_table = "  ".join(f"{t} {grown[t] / workers:6.0f}" for t in TABLES if grown[t])
    total = sum(grown.values())
    print(f"  {stage:<38} {total / 1e6:7.2f} MB  {total / workers:6.0f} B/worker  ({per_table})")


def measure(db_url: str, sizes: Sizes, workers: int, caches: int, passes: int) -> None:
    names = cache_names(caches)
    asyncio.run(upgrade(db_url))
    empty = sizes()
    asyncio.run(seed_reports(db_url, workers, names, NOW - 600_000))
    show("receipts + inventory, 1 report", sizes(), empty, workers)
    for again in range(1, passes):
        asyncio.run(seed_reports(db_url, workers, names, NOW - 600_000 + again))
    if passes > 1:
        show(f"the same after {passes} reports each", sizes(), empty, workers)
    before = sizes()
    asyncio.run(seed_fetches(db_url, workers))
    show("fetch-only client ids (per client id)", sizes(), before, workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=10_000)
    parser.add_argument("--caches", type=int, default=5)
    parser.add_argument("--passes", type=int, default=3, help="reports per worker (3)")
    parser.add_argument("--backends", default="sqlite,postgres")
    options = parser.parse_args()
    shape = (options.workers, options.caches, options.passes)
    for backend in options.backends.split(","):
        print(f"{backend}: {options.workers:,} workers x {options.caches} cache names")
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder, "purgecache.db")
                measure(f"sqlite:///{path}", partial(sqlite_sizes, path), *shape)
            continue
        name = f"pcbench_storage_{os.getpid()}"
        url = POSTGRES.rsplit("/", 1)[0] + f"/{name}"
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        try:
            measure(url, partial(postgres_sizes, url), *shape)
        finally:
            with psycopg.connect(POSTGRES, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


if __name__ == "__main__":
    main()

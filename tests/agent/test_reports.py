"""Receipts from agents (issue 13, items 3 and 6): several real `purgecache agent sync`
processes on one pool report, through `reportWorkerSync` of a real server, what each purge
took and what they hold; reports are idempotent; against a service without the endpoint an
agent says so once, backs off, and syncs as before."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from agent.conftest import clean_environ
from agent.proxy import RecordingProxy
from agent.worker import Worker
from purgecache.client import Credentials, PurgeCache
from purgecache.model import to_ms
from purgecache.storage import open_storage
from purgecache.storage.receipts import StoredInventory, StoredReceipt

from conftest import ADMIN, LiveServer

CONTENT = b"x" * 100_000


def sync(worker: Worker, *extra: str) -> subprocess.CompletedProcess[str]:
    environ = clean_environ(
        TASKCLUSTER_ROOT_URL=worker.root_url,
        TASKCLUSTER_CLIENT_ID=ADMIN[0],
        TASKCLUSTER_ACCESS_TOKEN=ADMIN[1],
        PURGECACHE_AGENT_WORKER_ID=worker.root.name,
    )
    result = worker.sync(*extra, environ=environ)
    assert result.returncode == 0, result.stderr
    return result


def stored(server: LiveServer, pool: str) -> tuple[list[StoredReceipt], list[StoredInventory]]:
    """The pool's receipts and inventories as the server's database holds them."""

    async def read() -> tuple[list[StoredReceipt], list[StoredInventory]]:
        storage = open_storage(getattr(server, "db_url", f"sqlite:///{server.db_path}"))
        try:
            return await storage.worker_receipts(pool), await storage.worker_inventory(pool)
        finally:
            await storage.close()

    return asyncio.run(read())


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def purge(root_url: str, pool: str, cache_name: str) -> int:
    """Purge as an administrator; the purge's `before` (ms)."""
    with PurgeCache(root_url, Credentials(*ADMIN)) as client:
        client.purge_cache(pool, cache_name)
        answer = client.purge_requests(pool)
    return max(to_ms(r.before) for r in answer.requests if r.cache_name == cache_name)


def test_agents_on_one_pool_report_receipts_and_inventory_idempotently(
    tmp_path: Path, server: LiveServer
) -> None:
    """Three agents, each with a released `checkouts` copy of 100 kB and an `sccache`; one
    also holds a `checkouts` copy in a running task. After a purge each reports the purge's
    `before`, one copy deleted with its recorded size, the copy in use, and its inventory;
    a sync that changed nothing sends nothing; a report after the interval changes no
    receipt (idempotent)."""
    pool = f"r-{uuid.uuid4().hex[:12]}/linux"
    workers = [Worker(tmp_path / f"w{i}", pool, server.root_url) for i in range(3)]
    for worker in workers:
        sync(worker)  # measures the service's clock; reports an empty inventory
        for name in ("checkouts", "sccache"):
            data = worker.mount(name)
            (data / "content").write_bytes(CONTENT)
            if worker is workers[0] and name == "checkouts":
                busy = worker.mount(name)  # a second task, still running
                (busy / "content").write_bytes(CONTENT)
            worker.release(data)
    before = purge(server.root_url, pool, "checkouts")
    for worker in workers:
        sync(worker)
    wait_for(lambda: len(stored(server, pool)[0]) == 3)
    receipts, inventory = stored(server, pool)
    assert [r.worker_id for r in receipts] == ["w0", "w1", "w2"]
    for stored_receipt in receipts:
        receipt = stored_receipt.receipt
        assert (receipt.cache_name, receipt.honoured_before) == ("checkouts", before)
        assert (receipt.instances_deleted, receipt.failures) == (1, 0)
        assert len(CONTENT) <= receipt.bytes_freed < 2 * len(CONTENT)
        assert receipt.oldest_deleted_age_ms is not None and receipt.oldest_deleted_age_ms >= 0
    assert [r.receipt.in_use for r in receipts] == [1, 0, 0]
    held = {(i.worker_id, i.inventory.cache_name): i.inventory for i in inventory}
    assert held[("w1", "checkouts")].instances == 0
    assert held[("w1", "sccache")].instances == 1
    assert len(CONTENT) <= held[("w1", "sccache")].bytes < 2 * len(CONTENT)
    assert held[("w1", "sccache")].last_used is not None

    sync(workers[1])  # nothing changed, within the interval: no report
    time.sleep(0.5)
    assert stored(server, pool)[0] == receipts
    workers[0].release(busy)  # the task ends: its purged copy goes and is counted
    sync(workers[0], "--report-interval", "1ms")
    wait_for(lambda: stored(server, pool)[0][0].receipt.in_use == 0)
    first = stored(server, pool)[0][0].receipt
    assert (first.instances_deleted, first.in_use) == (2, 0)
    assert first.bytes_freed >= 2 * len(CONTENT)
    time.sleep(0.01)
    sync(workers[2], "--report-interval", "1ms")  # a replay of the same receipts
    wait_for(lambda: stored(server, pool)[0][2].reported_at > receipts[2].reported_at)
    assert stored(server, pool)[0][2].receipt == receipts[2].receipt


def test_without_the_endpoint_an_agent_says_so_once_backs_off_and_syncs_as_before(
    tmp_path: Path, server: LiveServer
) -> None:
    """Through a proxy that answers every POST 404 (as upstream Taskcluster answers an
    extension it lacks): the first report is refused, the next sync prints it once, later
    syncs try no report (back-off) and purges still reach the disk."""
    pool = f"r-{uuid.uuid4().hex[:12]}/linux"
    proxy = RecordingProxy(server.root_url)
    try:
        worker = Worker(tmp_path / "w0", pool, proxy.root_url)
        kept = worker.free_instance("checkouts")
        sync(worker)
        wait_for(lambda: any("/ext/report/" in p for p in proxy.paths))
        ledger = worker.root / "report.json"
        wait_for(lambda: ledger.exists() and "404" in ledger.read_text())
        second = sync(worker, "--report-interval", "1ms")
        assert "receipts not sent" in second.stderr and "404" in second.stderr
        purge(server.root_url, pool, "checkouts")
        third = sync(worker, "--report-interval", "1ms")
        assert "receipts not sent" not in third.stderr
        assert f"deleted {kept.parent}" in third.stdout
        time.sleep(0.3)
        assert sum("/ext/report/" in p for p in proxy.paths) == 1
    finally:
        proxy.stop()


def test_a_daemon_without_the_report_scope_logs_the_refusal_once_and_keeps_syncing(
    tmp_path: Path, server: LiveServer
) -> None:
    """`agent run` with credentials that may read purge requests but not report (403):
    one log line about the receipts, then syncs every interval as before, no more tries."""
    pool = f"r-{uuid.uuid4().hex[:12]}/linux"
    worker = Worker(tmp_path / "w0", pool, server.root_url)  # the reader's credentials
    worker.free_instance("checkouts")
    with worker.running_daemon("--interval", "300ms", "--report-interval", "1ms"):
        wait_for(lambda: worker.daemon_log.read_text().count("watermark") >= 4)
    log = worker.daemon_log.read_text()
    assert log.count("receipts not sent") == 1 and "403" in log, log
    assert stored(server, pool) == ([], [])

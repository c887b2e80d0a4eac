"""What an agent reports (receipts and inventory from its records, never walking trees at
report time), who it reports as, and when (the ledger's schedule and back-off)."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest

from agent.fakes import FakeClock, FakeService
from purgecache.agent import CacheRegistry, sync_once
from purgecache.agent.receipts import Held, Receipt, take_stock
from purgecache.agent.report import (
    REFUSED_FIRST_MS,
    REFUSED_MAX_MS,
    Identity,
    Ledger,
    due,
    save_ledger,
    send,
)
from purgecache.agent.settings import default_worker_id

POOL = "proj-a/linux"
INTERVAL = 10 * 60_000
SIZE = 50_000


def used(registry: CacheRegistry, name: str, clock: FakeClock, count: int = 1) -> None:
    """`count` tasks at once used instances of `name` (one made 1 s after the other), each
    wrote SIZE bytes and released it."""
    paths = []
    for _ in range(count):
        paths.append(registry.mount(name))
        (paths[-1] / "blob").write_bytes(b"x" * SIZE)
        clock.advance(1_000)
    for path in paths:
        registry.release(path)


@pytest.mark.parametrize(
    ("hostname", "worker_id"),
    [
        ("build-1.example.com", "build-1"),
        ("my_host!x", "my_host-x"),
        ("ä" * 50, "-" * 38),
        ("", "worker"),
    ],
)
def test_the_default_worker_id_is_the_hostnames_first_label_made_safe(
    hostname: str, worker_id: str
) -> None:
    """First label; characters outside [A-Za-z0-9_-] become `-`; at most 38."""
    assert default_worker_id(hostname) == worker_id


def test_receipts_count_what_each_purge_withdrew_with_sizes_recorded_at_release(
    registry: CacheRegistry, service: FakeService, clock: FakeClock
) -> None:
    """Two released copies and one in use: the sync withdraws two (their release sizes and
    the older one's age), the third counts as in use until its release withdraws it; the
    cache not purged appears in the inventory only; a later purge starts a new tally."""
    sync_once(registry, service, POOL)
    held = registry.mount("checkouts")
    used(registry, "checkouts", clock, count=2)
    used(registry, "sccache", clock)
    sccache_released = clock.wall
    (held / "blob").write_bytes(b"y" * SIZE)
    clock.advance(8_000)
    before = service.purge("checkouts")
    sync_once(registry, service, POOL)
    stock = take_stock(registry)
    (receipt,) = stock.receipts
    assert (receipt.cache_name, receipt.honoured_before) == ("checkouts", before)
    assert (receipt.deleted, receipt.in_use, receipt.failures) == (2, 1, 0)
    assert 2 * SIZE <= receipt.bytes_freed < 3 * SIZE
    assert receipt.oldest_deleted_age_ms is not None  # 11 s, in the Date's half-second
    assert abs(receipt.oldest_deleted_age_ms - 11_000) <= 500
    sccache = [h for h in stock.held if h.cache_name == "sccache"]
    assert [(h.instances, h.last_used) for h in sccache] == [(1, sccache_released)]
    assert SIZE <= sccache[0].bytes < 2 * SIZE
    registry.release(held)
    after = take_stock(registry).receipts[0]
    assert (after.deleted, after.in_use) == (3, 0)
    assert after.bytes_freed >= 3 * SIZE
    assert take_stock(registry).digest() != stock.digest()
    clock.advance(10_000)
    service.purge("checkouts")
    sync_once(registry, service, POOL)
    assert take_stock(registry).receipts[0] == Receipt(
        "checkouts", service.purges["checkouts"], 0, 0, None, 0, 0
    )
    assert Held("checkouts", 0, 0, None) in take_stock(registry).held


def test_a_report_is_due_on_new_receipts_or_after_the_interval_never_while_refused() -> None:
    """The ledger: new receipts or the interval make a report due; a refusal keeps it quiet
    an hour, doubling up to a day, and is to be shown once."""
    sent = Ledger().sent("d1", 1_000)
    assert not sent.due("d1", 2_000, 60_000)
    assert sent.due("d2", 2_000, 60_000)
    assert sent.due("d1", 61_000, 60_000)
    refused = sent.refused("404", 5_000)
    assert (refused.quiet_until, refused.shown) == (5_000 + REFUSED_FIRST_MS, False)
    assert not refused.due("d2", refused.quiet_until - 1, 60_000)
    assert refused.due("d2", refused.quiet_until, 60_000)
    again = refused.refused("404", 10_000)
    assert (again.quiet_until, again.shown) == (10_000 + 2 * REFUSED_FIRST_MS, True)
    for _ in range(10):
        again = again.refused("404", 10_000)
    assert again.quiet_until == 10_000 + REFUSED_MAX_MS
    assert Ledger.from_json(again.to_json()) == again
    assert Ledger.from_json({"sent_at": "nonsense", "bogus": 1}) == Ledger()


def test_within_the_interval_only_an_eventful_sync_looks_for_new_receipts(
    registry: CacheRegistry, service: FakeService, clock: FakeClock
) -> None:
    """The first report is due at once; then, within the interval, a sync that received or
    did nothing does not read the records (a deletion made by a release waits for the
    interval or the next eventful sync); one that did reports what changed."""
    sync_once(registry, service, POOL)
    stock = due(registry, POOL, INTERVAL, eventful=False)
    assert stock is not None
    save_ledger(registry.layout.root, POOL, Ledger().sent(stock.digest(), clock.wall))
    held = registry.mount("checkouts")
    service.purge("checkouts")
    clock.advance(1_000)
    report = sync_once(registry, service, POOL)
    assert report.eventful
    assert due(registry, POOL, INTERVAL, eventful=True) is not None
    save_ledger(
        registry.layout.root, POOL, Ledger().sent(take_stock(registry).digest(), clock.wall)
    )
    registry.release(held)  # deleted now: the receipts change outside a sync
    clock.advance(6 * 60_000)
    sync_once(registry, service, POOL)  # moves the watermark past the purge and its slack
    assert not sync_once(registry, service, POOL).eventful
    assert due(registry, POOL, INTERVAL, eventful=False) is None
    clock.advance(5 * 60_000)
    assert due(registry, POOL, INTERVAL, eventful=False) is not None


def test_a_worker_with_too_many_caches_reports_what_fits_in_one_body(
    registry: CacheRegistry, service: FakeService, clock: FakeClock
) -> None:
    """300 purged caches with 1,000-character names: the report keeps the newest purges
    first and stays within the service's 64 KiB body and 500 entries of each kind."""
    sync_once(registry, service, POOL)
    names = [f"{i:04d}" + "é" * 996 for i in range(300)]
    for name in names:
        registry.release(registry.mount(name))
        service.purge(name)
        clock.advance(1)
    sync_once(registry, service, POOL)
    sent: list[Any] = []

    class Client:
        def report_worker_sync(self, *args: Any) -> None:
            sent.append(args)

    send(cast(Any, Client()), POOL, Identity("local", "w1"), take_stock(registry))
    (_, _, _, receipts, inventory), *_ = sent
    body = {
        "caches": [r.to_json() for r in receipts],
        "inventory": [i.to_json() for i in inventory],
    }
    assert len(json.dumps(body, ensure_ascii=False).encode()) <= 64 * 1024
    assert 0 < len(receipts) < 300
    assert [r.cache_name for r in receipts] == names[::-1][: len(receipts)]

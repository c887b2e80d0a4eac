"""Group commit: concurrent purges share transactions, and nobody hears "done" too early."""

from __future__ import annotations

import asyncio

import pytest

from purgecache.storage.batching import WriteBatcher


class SlowStore:
    """Commits take a while; records each batch and can fail one on purpose."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.committed: set[int] = set()
        self.fail_batches_with: set[int] = set()

    async def write_many(self, rows: list[int]) -> None:
        await asyncio.sleep(0.01)
        self.batches.append(rows)
        if self.fail_batches_with & set(rows):
            raise OSError("disk full")
        self.committed.update(rows)


def test_concurrent_writes_share_commits_and_return_after_theirs() -> None:
    """100 concurrent writes need far fewer commits, and each returns only once committed."""
    store = SlowStore()

    async def scenario() -> None:
        batcher: WriteBatcher[int] = WriteBatcher(store.write_many)

        async def one(n: int) -> None:
            await batcher.write(n)
            assert n in store.committed

        await asyncio.gather(*(one(n) for n in range(100)))

    asyncio.run(scenario())
    assert sorted(n for batch in store.batches for n in batch) == list(range(100))
    assert len(store.batches) <= 3  # the first alone, then the rest queued behind it


def test_a_failed_commit_fails_its_own_batch_only() -> None:
    """Waiters of a failed batch get the error; later batches still commit."""
    store = SlowStore()
    store.fail_batches_with = {0}

    async def scenario() -> list[object]:
        batcher: WriteBatcher[int] = WriteBatcher(store.write_many)
        first = asyncio.create_task(batcher.write(0))
        await asyncio.sleep(0)
        rest = [asyncio.create_task(batcher.write(n)) for n in range(1, 5)]
        return await asyncio.gather(first, *rest, return_exceptions=True)

    results = asyncio.run(scenario())
    assert isinstance(results[0], OSError)
    assert results[1:] == [None] * 4
    assert store.committed == {1, 2, 3, 4}


def test_an_idle_writer_commits_at_once() -> None:
    """A lone write is committed by itself, without waiting for company."""
    store = SlowStore()

    async def scenario() -> None:
        batcher: WriteBatcher[int] = WriteBatcher(store.write_many)
        await asyncio.wait_for(batcher.write(7), timeout=1)

    asyncio.run(scenario())
    assert store.batches == [[7]]


@pytest.mark.parametrize("size", [1, 3])
def test_batches_are_capped(size: int) -> None:
    """No batch exceeds max_batch rows."""
    store = SlowStore()

    async def scenario() -> None:
        batcher: WriteBatcher[int] = WriteBatcher(store.write_many, max_batch=size)
        await asyncio.gather(*(batcher.write(n) for n in range(10)))

    asyncio.run(scenario())
    assert max(len(batch) for batch in store.batches) <= size

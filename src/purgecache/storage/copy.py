"""`purgecache db copy`: move open purge requests between databases.

Sources: our own SQLite or PostgreSQL databases, or an upstream Taskcluster PostgreSQL database
(its `cache_purges` table, with `worker_pool_id` since DB version 50 or the older
`provisioner_id`/`worker_type` pair), so a deployment replacing upstream keeps the purges its
workers have not seen yet. Targets: our own databases, or an upstream one (its `cache_purges`
table, either shape), so that rolling back to upstream keeps the purges made meanwhile. Only
unexpired requests are copied, with their until-applied policy between our own databases; a
request already in the target keeps the later `before` and `expires` (and the policy of the
later `before`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from purgecache.model import PurgeRequest, is_worker_pool_id
from purgecache.storage import POSTGRES_SCHEMES, Storage, StorageError, open_storage
from purgecache.storage.base import POLICY_SCHEMA

BATCH = 5000

_UPSTREAM_COLUMNS = """
SELECT column_name FROM information_schema.columns
WHERE table_name = 'cache_purges' AND table_schema = current_schema()
"""


async def _ours(storage: Storage, now: int) -> AsyncIterator[list[PurgeRequest]]:
    with_policy = await storage.schema_version() >= POLICY_SCHEMA  # until applied, or not
    after: tuple[str, str] | None = None
    while True:
        rows = await storage.list_page(after, BATCH, now, with_policy=with_policy)
        if not rows:
            return
        yield rows
        after = (rows[-1].worker_pool_id, rows[-1].cache_name)


async def _upstream_columns(url: str) -> set[str]:
    import psycopg

    try:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            found = await (await conn.execute("SELECT to_regclass('purgecache_schema')")).fetchone()
            if found and found[0] is not None:
                return set()  # one of ours
            cursor = await conn.execute(_UPSTREAM_COLUMNS)
            return {row[0] for row in await cursor.fetchall()}
    except psycopg.Error as error:
        raise StorageError(f"PostgreSQL: {error}") from error


async def _upstream(url: str, columns: set[str], now: int) -> AsyncIterator[list[PurgeRequest]]:
    import psycopg

    pool = (
        "worker_pool_id" if "worker_pool_id" in columns else "provisioner_id || '/' || worker_type"
    )
    query = (
        f"SELECT {pool}, cache_name, (extract(epoch FROM before) * 1000)::bigint, "
        "(extract(epoch FROM expires) * 1000)::bigint FROM cache_purges "
        "WHERE expires > to_timestamp(%s / 1000.0)"
    )
    try:
        async with (
            await psycopg.AsyncConnection.connect(url) as conn,
            conn.cursor(name="purgecache_copy") as cursor,
        ):
            await cursor.execute(query, (now,))
            while rows := await cursor.fetchmany(BATCH):
                yield [_upstream_row(row) for row in rows if is_worker_pool_id(row[0])]
    except psycopg.Error as error:
        raise StorageError(f"PostgreSQL: {error}") from error


def _upstream_row(row: tuple[Any, ...]) -> PurgeRequest:
    return PurgeRequest(str(row[0]), str(row[1]), int(row[2]), int(row[3]))


def _upstream_upsert(columns: set[str]) -> str:
    """One row into upstream's table: the later `before` and `expires` stand, as in ours (a
    new `etag` where the table has one, as upstream's own writes give)."""
    if "worker_pool_id" in columns:
        key, values = "worker_pool_id, cache_name", "%s, %s"
    else:
        key, values = "provisioner_id, worker_type, cache_name", "split_part(%s, '/', 1), "
        values += "split_part(%s, '/', 2), %s"
    etag = ", etag = gen_random_uuid()" if "etag" in columns else ""
    return (
        f"INSERT INTO cache_purges ({key}, before, expires) VALUES ({values}, "
        "to_timestamp(%s / 1000.0), to_timestamp(%s / 1000.0)) "
        f"ON CONFLICT ({key}) DO UPDATE SET "
        "before = greatest(cache_purges.before, excluded.before), "
        f"expires = greatest(cache_purges.expires, excluded.expires){etag}"
    )


async def _write_upstream(
    url: str, columns: set[str], batches: AsyncIterator[list[PurgeRequest]]
) -> int:
    """Write the batches into upstream's `cache_purges`, each in one transaction."""
    import psycopg

    query, copied = _upstream_upsert(columns), 0
    pool_args = 1 if "worker_pool_id" in columns else 2
    try:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            async for batch in batches:
                rows = [
                    (*[r.worker_pool_id] * pool_args, r.cache_name, r.before, r.expires)
                    for r in batch
                ]
                async with conn.cursor() as cursor:
                    await cursor.executemany(query, rows)
                await conn.commit()
                copied += len(batch)
    except psycopg.Error as error:
        raise StorageError(f"PostgreSQL: {error}") from error
    return copied


async def _write_ours(target: Storage, batches: AsyncIterator[list[PurgeRequest]]) -> int:
    copied = 0
    async for batch in batches:
        if batch:
            await target.put_many([(request, request.to_entry()) for request in batch])
            copied += len(batch)
    return copied


def _is_upstream(columns: set[str]) -> bool:
    return {"cache_name", "before", "expires"} <= columns


async def _columns(url: str) -> set[str]:
    return await _upstream_columns(url) if url.startswith(POSTGRES_SCHEMES) else set()


async def copy_requests(source_url: str, target_url: str, now: int) -> tuple[int, str]:
    """Copy every unexpired request; return how many and what kind of source it was."""
    columns, target_columns = await _columns(source_url), await _columns(target_url)
    target = None if _is_upstream(target_columns) else open_storage(target_url)
    source: Storage | None = None
    try:
        if target is not None:
            await target.upgrade()
        if _is_upstream(columns):
            kind, batches = "an upstream Taskcluster database", _upstream(source_url, columns, now)
        else:
            source = open_storage(source_url)
            if await source.schema_version() == 0:
                raise StorageError(f"{source_url} holds no purgecache or upstream purge requests")
            kind, batches = "a purgecache database", _ours(source, now)
        if target is None:
            copied = await _write_upstream(target_url, target_columns, batches)
            kind += " into an upstream Taskcluster database"
        else:
            copied = await _write_ours(target, batches)
    finally:
        if target is not None:
            await target.close()
        if source is not None:
            await source.close()
    return copied, kind

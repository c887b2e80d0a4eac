"""Migration 3: every row's entry made again by `PurgeRequest.to_entry` (the code that makes
new rows' entries): migration 2 built old rows' entries with `json_build_object`, whose text
has spaces, so they listed with other bytes than new rows. Then `wire` may no longer be NULL.

Batches of rows in key order, each in its own transaction, so a big table is never locked by
one long transaction. A row whose `before` moved meanwhile was written with its own entry by
the purge that moved it, and is left alone.
"""

from __future__ import annotations

from typing import Any

import psycopg

from purgecache.model import PurgeRequest

BATCH = 5000

_FIRST = "SELECT worker_pool_id, cache_name, before FROM cache_purges ORDER BY 1, 2 LIMIT %s"
_NEXT = (
    "SELECT worker_pool_id, cache_name, before FROM cache_purges "
    "WHERE (worker_pool_id, cache_name) > (%s, %s) ORDER BY 1, 2 LIMIT %s"
)
_REWRITE = (
    "UPDATE cache_purges SET wire = fresh.wire "
    "FROM unnest(%b::text[], %b::text[], %b::bigint[], %b::text[]) "
    "AS fresh(worker_pool_id, cache_name, before, wire) "
    "WHERE cache_purges.worker_pool_id = fresh.worker_pool_id "
    "AND cache_purges.cache_name = fresh.cache_name AND cache_purges.before = fresh.before"
)


async def migrate(conn: psycopg.AsyncConnection[Any]) -> None:
    """Rewrite every entry, batch by batch; then require one on every row."""
    after: tuple[str, str] | None = None
    while True:
        async with conn.transaction():
            query, args = (_FIRST, (BATCH,)) if after is None else (_NEXT, (*after, BATCH))
            rows = await (await conn.execute(query, args)).fetchall()
            if not rows:
                break
            entries = [PurgeRequest(p, n, b, 0).to_entry().decode() for p, n, b in rows]
            pools, names, befores = (list(column) for column in zip(*rows, strict=True))
            await conn.execute(_REWRITE, (pools, names, befores, entries))
        after = (rows[-1][0], rows[-1][1])
    await conn.execute("ALTER TABLE cache_purges ALTER COLUMN wire SET NOT NULL")

-- Purge requests, one row per (pool, cache name). Times are ms since the Unix epoch.
CREATE TABLE IF NOT EXISTS cache_purges (
    worker_pool_id TEXT NOT NULL,
    cache_name TEXT NOT NULL,
    before INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    PRIMARY KEY (worker_pool_id, cache_name)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS cache_purges_expires ON cache_purges (expires);

-- Purge requests, one row per (pool, cache name). Times are ms since the Unix epoch.
-- COLLATE "C" makes ORDER BY code-point order, the same as SQLite's.
CREATE TABLE cache_purges (
    worker_pool_id text COLLATE "C" NOT NULL,
    cache_name text COLLATE "C" NOT NULL,
    before bigint NOT NULL,
    expires bigint NOT NULL,
    PRIMARY KEY (worker_pool_id, cache_name)
);

CREATE INDEX cache_purges_expires ON cache_purges (expires);

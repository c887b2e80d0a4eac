-- Workers' inventories (reportWorkerSync's `inventory`): per worker and cache name, the copies
-- it holds, their size as recorded when each was released, and when one was last used. A
-- report with an inventory replaces the worker's rows, one without leaves them. One row per
-- worker and cache name. Times are ms since the Unix epoch.
CREATE TABLE IF NOT EXISTS worker_caches (
    worker_pool_id TEXT NOT NULL,
    worker_group TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    cache_name TEXT NOT NULL,
    instances INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    last_used INTEGER,
    reported_at INTEGER NOT NULL,
    PRIMARY KEY (worker_pool_id, worker_group, worker_id, cache_name)
) WITHOUT ROWID;

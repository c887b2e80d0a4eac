-- Workers' receipts (reportWorkerSync): per worker and cache name, what it did for the newest
-- purge it honoured. One row per worker and cache name (never per purge): a report for a
-- later (or the same) `before` replaces the row, an older one is ignored, so replaying a
-- report changes nothing. Times are ms since the Unix epoch.
CREATE TABLE IF NOT EXISTS worker_receipts (
    worker_pool_id TEXT NOT NULL,
    worker_group TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    cache_name TEXT NOT NULL,
    honoured_before INTEGER NOT NULL,
    instances_deleted INTEGER NOT NULL,
    bytes_freed INTEGER NOT NULL,
    oldest_deleted_age_ms INTEGER,
    failures INTEGER NOT NULL,
    in_use INTEGER NOT NULL,
    reported_at INTEGER NOT NULL,
    PRIMARY KEY (worker_pool_id, worker_group, worker_id, cache_name)
) WITHOUT ROWID;

-- When each worker last reported, whatever it reported.
CREATE TABLE IF NOT EXISTS worker_reports (
    worker_pool_id TEXT NOT NULL,
    worker_group TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    reported_at INTEGER NOT NULL,
    PRIMARY KEY (worker_pool_id, worker_group, worker_id)
) WITHOUT ROWID;

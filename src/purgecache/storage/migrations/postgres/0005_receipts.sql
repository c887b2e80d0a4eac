-- Workers' receipts (reportWorkerSync): per worker and cache name, what it did for the newest
-- purge it honoured. One row per worker and cache name (never per purge): a report for a
-- later (or the same) `before` replaces the row, an older one is ignored, so replaying a
-- report changes nothing. Times are ms since the Unix epoch.
CREATE TABLE worker_receipts (
    worker_pool_id text COLLATE "C" NOT NULL,
    worker_group text COLLATE "C" NOT NULL,
    worker_id text COLLATE "C" NOT NULL,
    cache_name text COLLATE "C" NOT NULL,
    honoured_before bigint NOT NULL,
    instances_deleted bigint NOT NULL,
    bytes_freed bigint NOT NULL,
    oldest_deleted_age_ms bigint,
    failures bigint NOT NULL,
    in_use bigint NOT NULL,
    reported_at bigint NOT NULL,
    PRIMARY KEY (worker_pool_id, worker_group, worker_id, cache_name)
);

-- When each worker last reported, whatever it reported.
CREATE TABLE worker_reports (
    worker_pool_id text COLLATE "C" NOT NULL,
    worker_group text COLLATE "C" NOT NULL,
    worker_id text COLLATE "C" NOT NULL,
    reported_at bigint NOT NULL,
    PRIMARY KEY (worker_pool_id, worker_group, worker_id)
);

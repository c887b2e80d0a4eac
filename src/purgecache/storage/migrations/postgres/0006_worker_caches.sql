-- Workers' inventories (reportWorkerSync's `inventory`): per worker and cache name, the copies
-- it holds, their size as recorded when each was released, and when one was last used. A
-- report with an inventory replaces the worker's rows, one without leaves them. One row per
-- worker and cache name. Times are ms since the Unix epoch.
CREATE TABLE worker_caches (
    worker_pool_id text COLLATE "C" NOT NULL,
    worker_group text COLLATE "C" NOT NULL,
    worker_id text COLLATE "C" NOT NULL,
    cache_name text COLLATE "C" NOT NULL,
    instances bigint NOT NULL,
    bytes bigint NOT NULL,
    last_used bigint,
    reported_at bigint NOT NULL,
    PRIMARY KEY (worker_pool_id, worker_group, worker_id, cache_name)
);

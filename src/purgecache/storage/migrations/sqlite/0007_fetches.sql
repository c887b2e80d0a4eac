-- Fetches (issue 13 item 4): per worker pool and client id, the newest purge `before` an
-- answer of `purgeRequests` served to that client held, and when the client was last seen
-- (to the second the service flushed it). One row per pool and client id, never per purge.
-- `reports` is 1 once that client id sent a reportWorkerSync for the pool: its workers count
-- by their receipts, not as one fetching worker. Times are ms since the Unix epoch.
CREATE TABLE IF NOT EXISTS worker_fetches (
    worker_pool_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    fetched_before INTEGER NOT NULL,
    seen_at INTEGER NOT NULL,
    reports INTEGER NOT NULL,
    PRIMARY KEY (worker_pool_id, client_id)
) WITHOUT ROWID;

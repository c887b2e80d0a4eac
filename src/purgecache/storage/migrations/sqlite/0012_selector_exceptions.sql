-- Caches a selector no longer reaches (cancelPurge): cancelling the purge of one cache of a
-- pool also withdraws that pair from every open selector that covers it, so that agents,
-- which apply selectors to the caches they hold (listPoolSelectors: exceptCacheNames), leave
-- it alone. Keyed by the selector's `before`: applying it again reaches the pair again.
-- Rows of selectors no longer open are removed by the expiry job.
CREATE TABLE IF NOT EXISTS purge_selector_exceptions (
    worker_pool_pattern TEXT NOT NULL,
    cache_name_pattern TEXT NOT NULL,
    before INTEGER NOT NULL,
    worker_pool_id TEXT NOT NULL,
    cache_name TEXT NOT NULL,
    PRIMARY KEY (worker_pool_id, worker_pool_pattern, cache_name_pattern, before, cache_name)
) WITHOUT ROWID;

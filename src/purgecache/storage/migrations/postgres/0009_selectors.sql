-- Selector purges (createSelectorPurge): the history says which selector produced a purge
-- (NULL for a purge of one named cache), and the selectors applied are kept, like purge
-- requests, until they expire, for agents to apply to caches the service never heard of
-- (listPoolSelectors). Re-applying a selector moves its `before` forward. `pool_prefix` is
-- the pool pattern's literal start, which every pool it matches begins with. Times are ms
-- since the Unix epoch.
ALTER TABLE purge_history ADD COLUMN selector_pool_pattern text COLLATE "C";
ALTER TABLE purge_history ADD COLUMN selector_cache_pattern text COLLATE "C";

CREATE TABLE purge_selectors (
    worker_pool_pattern text COLLATE "C" NOT NULL,
    cache_name_pattern text COLLATE "C" NOT NULL,
    pool_prefix text COLLATE "C" NOT NULL,
    before bigint NOT NULL,
    expires bigint NOT NULL,
    PRIMARY KEY (worker_pool_pattern, cache_name_pattern)
);

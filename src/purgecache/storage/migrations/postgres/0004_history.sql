-- The purge history: one row per accepted purge (a re-purge adds another), with who asked,
-- from where, how the request was signed and why. Kept for --history-retention, apart from
-- cache_purges (what workers read). Times are ms since the Unix epoch.
CREATE TABLE purge_history (
    event_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    worker_pool_id text COLLATE "C" NOT NULL,
    cache_name text COLLATE "C" NOT NULL,
    purged_at bigint NOT NULL,
    endpoint text NOT NULL,
    client_id text COLLATE "C",
    source_ip text,
    signed_spelling text,
    user_agent text,
    reason text,
    link text
);

-- A pool's events newest first, and every event newest first (and pruning by age).
CREATE INDEX purge_history_pool ON purge_history (worker_pool_id, purged_at, event_id);
CREATE INDEX purge_history_time ON purge_history (purged_at, event_id);

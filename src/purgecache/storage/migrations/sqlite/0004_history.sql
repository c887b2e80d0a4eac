-- The purge history: one row per accepted purge (a re-purge adds another), with who asked,
-- from where, how the request was signed and why. Kept for --history-retention, apart from
-- cache_purges (what workers read). Times are ms since the Unix epoch.
CREATE TABLE IF NOT EXISTS purge_history (
    event_id INTEGER PRIMARY KEY,
    worker_pool_id TEXT NOT NULL,
    cache_name TEXT NOT NULL,
    purged_at INTEGER NOT NULL,
    endpoint TEXT NOT NULL,
    client_id TEXT,
    source_ip TEXT,
    signed_spelling TEXT,
    user_agent TEXT,
    reason TEXT,
    link TEXT
);

-- Events newest first, time ranges and pruning by age. Only this one index, which every
-- purge extends at its end: an index by pool, updated at a random place by every purge,
-- halved SQLite's purge throughput. A pool's listing walks this one and filters (the
-- PostgreSQL schema has the index by pool too).
CREATE INDEX IF NOT EXISTS purge_history_time ON purge_history (purged_at, event_id);

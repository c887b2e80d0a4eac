-- The event outbox: every event (purge.created, purge.applied, purge.expired) is written in
-- the transaction of what it describes, then delivered at least once to each target by the
-- dispatcher of any replica. Times are ms since the Unix epoch.
CREATE TABLE IF NOT EXISTS event_outbox (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    worker_pool_id TEXT NOT NULL,
    cache_name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    body BLOB NOT NULL
);

-- Where events go (`amqp`, `webhook:<url>`): set by the serving processes from their
-- configuration: every new event gets one delivery per target.
CREATE TABLE IF NOT EXISTS event_targets (target TEXT PRIMARY KEY) WITHOUT ROWID;

-- One row per event and target until it is delivered (then deleted). A dispatcher leases a
-- row (lease_until) before delivering it, so that one replica delivers it, a failed attempt
-- schedules the next (next_attempt_at), after the give-up time failed_at is set and the row
-- waits for `purgecache events retry` or `drop`.
CREATE TABLE IF NOT EXISTS event_deliveries (
    seq INTEGER NOT NULL REFERENCES event_outbox (seq) ON DELETE CASCADE,
    target TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until INTEGER NOT NULL DEFAULT 0,
    failed_at INTEGER,
    last_error TEXT,
    PRIMARY KEY (seq, target)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS event_deliveries_due ON event_deliveries (target, next_attempt_at);

CREATE TRIGGER IF NOT EXISTS event_outbox_fan_out AFTER INSERT ON event_outbox BEGIN
    INSERT INTO event_deliveries (seq, target, next_attempt_at)
    SELECT NEW.seq, target, NEW.created_at FROM event_targets;
END

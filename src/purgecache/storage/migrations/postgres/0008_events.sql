-- The event outbox: every event (purge.created, purge.applied, purge.expired) is written in
-- the transaction of what it describes, then delivered at least once to each target by the
-- dispatcher of any replica. Times are ms since the Unix epoch.
CREATE TABLE event_outbox (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id text COLLATE "C" NOT NULL UNIQUE,
    kind text NOT NULL,
    worker_pool_id text COLLATE "C" NOT NULL,
    cache_name text COLLATE "C" NOT NULL,
    created_at bigint NOT NULL,
    body bytea NOT NULL
);

-- Where events go (`amqp`, `webhook:<url>`): set by the serving processes from their
-- configuration: every new event gets one delivery per target.
CREATE TABLE event_targets (target text COLLATE "C" PRIMARY KEY);

-- One row per event and target until it is delivered (then deleted). A dispatcher leases
-- rows (FOR UPDATE SKIP LOCKED, then lease_until) before delivering them, so that one replica
-- delivers each, a failed attempt schedules the next (next_attempt_at), after the give-up time
-- failed_at is set and the row waits for `purgecache events retry` or `drop`.
CREATE TABLE event_deliveries (
    seq bigint NOT NULL REFERENCES event_outbox (seq) ON DELETE CASCADE,
    target text COLLATE "C" NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at bigint NOT NULL,
    lease_until bigint NOT NULL DEFAULT 0,
    failed_at bigint,
    last_error text,
    PRIMARY KEY (seq, target)
);

CREATE INDEX event_deliveries_due ON event_deliveries (target, next_attempt_at);

CREATE FUNCTION purgecache_event_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_deliveries (seq, target, next_attempt_at)
    SELECT NEW.seq, target, NEW.created_at FROM event_targets;
    RETURN NULL;
END
$$;

CREATE TRIGGER event_outbox_fan_out AFTER INSERT ON event_outbox
    FOR EACH ROW EXECUTE FUNCTION purgecache_event_fan_out();

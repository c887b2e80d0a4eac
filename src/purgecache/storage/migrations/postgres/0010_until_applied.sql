-- Purges that last until applied (issue 16, item 5). A request made with the policy keeps
-- `expires` at its maximum age (so every read serves it as before) and `until_applied` at
-- the end of its normal retention: from then on the expiry job removes it once every active
-- worker of the pool applied it (or at once when the pool has no active worker). NULL: the
-- normal policy. `converged_at`: when the expiry job first found every active worker had
-- applied it (purge.converged was sent then), cleared by a re-purge.
ALTER TABLE cache_purges ADD COLUMN until_applied bigint;
ALTER TABLE cache_purges ADD COLUMN converged_at bigint;

-- Why and when each purge stopped being served: converged, expired, superseded (a newer
-- purge of the same pool and cache replaced it) or cancelled, NULL while it is open (and for
-- purges recorded before this migration that ended before it).
ALTER TABLE purge_history ADD COLUMN ended_at bigint;
ALTER TABLE purge_history ADD COLUMN end_reason text;

-- Purges that ended before this migration: superseded when a later purge of the same pool
-- and cache is recorded, else expired unless still open (a request row stands for it). When
-- they ended is not known (ended_at stays NULL).
UPDATE purge_history SET end_reason = 'superseded' WHERE EXISTS (
    SELECT 1 FROM purge_history AS later
    WHERE later.worker_pool_id = purge_history.worker_pool_id
    AND later.cache_name = purge_history.cache_name AND later.purged_at > purge_history.purged_at
);
UPDATE purge_history SET end_reason = 'expired' WHERE end_reason IS NULL AND NOT EXISTS (
    SELECT 1 FROM cache_purges AS c
    WHERE c.worker_pool_id = purge_history.worker_pool_id
    AND c.cache_name = purge_history.cache_name AND c.before = purge_history.purged_at
);

-- A purge that replaces the stored request of its pool and cache ends that request's history
-- event (superseded, at the time of the first later purge of that cache: a write batch
-- stores only the last of several purges of one cache, whose events its statement has just
-- added), row by row inside the statement that replaced it, through the index by cache. Done
-- as one join over the whole batch instead, the planner scanned the history on every batch,
-- which grew slower with every purge. Purges of one cache within one write batch end each
-- other as their events are written. The index also serves a cache's history.
CREATE INDEX purge_history_cache ON purge_history (worker_pool_id, cache_name, purged_at);
CREATE FUNCTION purgecache_supersede() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE purge_history SET end_reason = 'superseded', ended_at = coalesce((
        SELECT min(later.purged_at) FROM purge_history later
        WHERE later.worker_pool_id = OLD.worker_pool_id AND later.cache_name = OLD.cache_name
        AND later.purged_at > OLD.before
    ), NEW.before)
    WHERE worker_pool_id = OLD.worker_pool_id AND cache_name = OLD.cache_name
    AND purged_at = OLD.before AND ended_at IS NULL;
    RETURN NULL;
END
$$;
CREATE TRIGGER cache_purges_supersede AFTER UPDATE OF before ON cache_purges
FOR EACH ROW WHEN (NEW.before <> OLD.before) EXECUTE FUNCTION purgecache_supersede();

-- Purges that last until applied (issue 16, item 5). A request made with the policy keeps
-- `expires` at its maximum age (so every read serves it as before) and `until_applied` at
-- the end of its normal retention: from then on the expiry job removes it once every active
-- worker of the pool applied it (or at once when the pool has no active worker). NULL: the
-- normal policy. `converged_at`: when the expiry job first found every active worker had
-- applied it (purge.converged was sent then), cleared by a re-purge.
ALTER TABLE cache_purges ADD COLUMN until_applied INTEGER;
ALTER TABLE cache_purges ADD COLUMN converged_at INTEGER;

-- Why and when each purge stopped being served: converged, expired, superseded (a newer
-- purge of the same pool and cache replaced it) or cancelled, NULL while it is open (and for
-- purges recorded before this migration that ended before it).
ALTER TABLE purge_history ADD COLUMN ended_at INTEGER;
ALTER TABLE purge_history ADD COLUMN end_reason TEXT;

-- Purges that ended before this migration: superseded when a later purge of the same pool
-- and cache is recorded, else expired unless still open (a request row stands for it). When
-- they ended is not known (ended_at stays NULL). A temporary index makes the look-up of later
-- purges cheap (the history has only its time index, see 0004).
CREATE INDEX purge_history_cache_0010 ON purge_history (worker_pool_id, cache_name, purged_at);
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
DROP INDEX purge_history_cache_0010;

-- A purge that replaces the stored request of its pool and cache ends that request's history
-- event (superseded, at the new purge's time) inside the statement that replaced it: no
-- statement of its own per purge (a purge of a new cache does not fire it at all). Purges of
-- one cache within one write batch end each other as their events are written.
CREATE TRIGGER IF NOT EXISTS cache_purges_supersede AFTER UPDATE OF before ON cache_purges
WHEN NEW.before <> OLD.before BEGIN
    UPDATE purge_history SET ended_at = NEW.before, end_reason = 'superseded'
    WHERE purged_at = OLD.before AND worker_pool_id = OLD.worker_pool_id
    AND cache_name = OLD.cache_name AND ended_at IS NULL;
END;

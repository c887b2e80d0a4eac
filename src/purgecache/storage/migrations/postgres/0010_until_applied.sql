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

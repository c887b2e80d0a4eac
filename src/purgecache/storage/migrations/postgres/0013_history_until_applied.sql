-- The until-applied policy of each purge in its history event (true: kept past its retention
-- until every active worker of the pool applied it, false: the normal policy), so an
-- operator sees why a purge stays open long after the retention. Written with the event, in
-- the same statement, from then on. (A constant default: no rewrite of the table.)
ALTER TABLE purge_history ADD COLUMN until_applied boolean NOT NULL DEFAULT false;

-- Events recorded before this migration did not keep the policy: true only where the purge
-- is still open with the policy (the request row of its pool and cache whose `before` is the
-- event's time has `until_applied` set), else false, also for purges that ended before it
-- (the policy they had is not known). Driven by the open requests, each found in the history
-- through its index by cache (0010).
UPDATE purge_history AS h SET until_applied = true FROM cache_purges AS c
WHERE c.until_applied IS NOT NULL AND h.worker_pool_id = c.worker_pool_id
AND h.cache_name = c.cache_name AND h.purged_at = c.before;

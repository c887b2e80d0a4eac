-- The until-applied policy of each purge in its history event (1: kept past its retention
-- until every active worker of the pool applied it, 0: the normal policy), so an operator
-- sees why a purge stays open long after the retention. Written with the event, in the same
-- statement, from then on.
ALTER TABLE purge_history ADD COLUMN until_applied INTEGER NOT NULL DEFAULT 0;

-- Events recorded before this migration did not keep the policy: 1 only where the purge is
-- still open with the policy (the request row of its pool and cache whose `before` is the
-- event's time has `until_applied` set), else 0, also for purges that ended before it (the
-- policy they had is not known).
UPDATE purge_history SET until_applied = 1 WHERE EXISTS (
    SELECT 1 FROM cache_purges AS c
    WHERE c.worker_pool_id = purge_history.worker_pool_id
    AND c.cache_name = purge_history.cache_name AND c.before = purge_history.purged_at
    AND c.until_applied IS NOT NULL
);

-- A writer that saw no event target writes its purges without building their purge.created
-- events (building one costs about as much as writing the purge, and by default events go
-- nowhere). Should a target have been registered meanwhile (by another replica), its write
-- fails with PCE01 instead, as a whole, and the writer writes the purges again with their
-- events: no purge accepted while a target is registered goes without its event.
CREATE OR REPLACE FUNCTION purgecache_events_built(built boolean) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT built AND EXISTS (SELECT 1 FROM event_targets) THEN
        RAISE EXCEPTION 'an event target is registered: purge.created events are wanted'
            USING ERRCODE = 'PCE01';
    END IF;
    RETURN true;
END
$$;

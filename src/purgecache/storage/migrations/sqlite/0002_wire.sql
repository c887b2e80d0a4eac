-- Each request's entry exactly as the API serves it, written once with the row, so listing
-- pages are joined from stored text instead of being re-serialised on every read.
ALTER TABLE cache_purges ADD COLUMN wire TEXT;

UPDATE cache_purges SET wire = json_object(
    'provisionerId', substr(worker_pool_id, 1, instr(worker_pool_id, '/') - 1),
    'workerType', substr(worker_pool_id, instr(worker_pool_id, '/') + 1),
    'cacheName', cache_name,
    'before', strftime('%Y-%m-%dT%H:%M:%S', before / 1000, 'unixepoch')
        || printf('.%03dZ', before % 1000)
);

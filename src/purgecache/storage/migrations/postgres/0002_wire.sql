-- Each request's entry exactly as the API serves it, written once with the row, so listing
-- pages are joined from stored text instead of being re-serialised on every read.
ALTER TABLE cache_purges ADD COLUMN wire text;

UPDATE cache_purges SET wire = json_build_object(
    'provisionerId', split_part(worker_pool_id, '/', 1),
    'workerType', split_part(worker_pool_id, '/', 2),
    'cacheName', cache_name,
    'before', to_char(to_timestamp(before / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || '.' || lpad((before % 1000)::text, 3, '0') || 'Z'
)::text;

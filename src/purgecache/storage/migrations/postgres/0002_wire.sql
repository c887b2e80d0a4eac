-- Each request's entry exactly as the API serves it, written once with the row, so listing
-- pages are joined from stored text instead of being re-serialised on every read. Migration 3
-- fills it for rows written before it existed, from Python (as new rows get it).
ALTER TABLE cache_purges ADD COLUMN wire text;

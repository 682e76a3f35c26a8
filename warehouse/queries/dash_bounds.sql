-- Span time bounds, newest load id and newest stored config: the dashboard's default range and cache key.
SELECT (SELECT min(start_time) FROM spans WHERE is_request) AS first_request,
       (SELECT max(start_time) FROM spans WHERE is_request) AS last_request,
       (SELECT count(*) FROM spans WHERE is_request) AS request_spans,
       (SELECT max(load_id) FROM ingest_log) AS load_id,
       (SELECT max(stored_at) FROM config) AS config_stored_at

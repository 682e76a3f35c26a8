-- Request time bounds, newest load id and newest stored config: the dashboard's default range and cache key. Requests starting after $horizon (now + the ingest clock skew) are left out of the bounds, so one span from the future cannot move the range.
SELECT (SELECT min(start_time) FROM spans
        WHERE is_request AND ($horizon::TIMESTAMPTZ IS NULL OR start_time <= $horizon))
           AS first_request,
       (SELECT max(start_time) FROM spans
        WHERE is_request AND ($horizon::TIMESTAMPTZ IS NULL OR start_time <= $horizon))
           AS last_request,
       (SELECT count(*) FROM spans WHERE is_request) AS request_spans,
       (SELECT max(load_id) FROM ingest_log) AS load_id,
       (SELECT max(stored_at) FROM config) AS config_stored_at

-- The dashboard's default range and cache key: the request bounds and count, the first and last time of any data (request spans, GPU samples, billing charges: the range of a warehouse without requests), the newest load id and stored config. Times after $horizon (now + the ingest clock skew) are left out, so one row from the future cannot move the range.
WITH data_times AS (
    SELECT min(start_time) AS first_at, max(start_time) AS last_at FROM spans
    WHERE is_request AND ($horizon::TIMESTAMPTZ IS NULL OR start_time <= $horizon)
    UNION ALL
    SELECT min(ts), max(ts) FROM gpu_samples
    WHERE $horizon::TIMESTAMPTZ IS NULL OR ts <= $horizon
    UNION ALL
    SELECT min(ChargePeriodStart), max(ChargePeriodStart) FROM billing
    WHERE $horizon::TIMESTAMPTZ IS NULL OR ChargePeriodStart <= $horizon
)
SELECT (SELECT min(start_time) FROM spans
        WHERE is_request AND ($horizon::TIMESTAMPTZ IS NULL OR start_time <= $horizon))
           AS first_request,
       (SELECT max(start_time) FROM spans
        WHERE is_request AND ($horizon::TIMESTAMPTZ IS NULL OR start_time <= $horizon))
           AS last_request,
       (SELECT count(*) FROM spans WHERE is_request) AS request_spans,
       (SELECT min(first_at) FROM data_times) AS first_data,
       (SELECT max(last_at) FROM data_times) AS last_data,
       (SELECT max(load_id) FROM ingest_log) AS load_id,
       (SELECT max(stored_at) FROM config) AS config_stored_at

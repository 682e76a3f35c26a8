-- A few failed request spans in each wanted (environment, minute): the example traces behind a down minute.
WITH wanted AS (
    SELECT unnest($minute_environments::VARCHAR[]) AS environment,
           unnest($minutes::TIMESTAMPTZ[]) AS minute
),
hits AS (
    SELECT s.environment, w.minute, s.start_time, s.trace_id, s.span_id, s.service, s.model,
           s.version, s.name, s.status_message, s.duration_ms,
           row_number() OVER (PARTITION BY s.environment, w.minute
                              ORDER BY s.start_time, s.trace_id, s.span_id) AS rank
    FROM spans s
    JOIN wanted w
      ON s.environment = w.environment
     AND s.start_time >= w.minute AND s.start_time < w.minute + INTERVAL 1 MINUTE
    WHERE s.is_request AND s.status_code = 'ERROR'
      AND s.start_time >= (SELECT min(minute) FROM wanted)
      AND s.start_time < (SELECT max(minute) FROM wanted) + INTERVAL 1 MINUTE
)
SELECT environment, minute, start_time, trace_id, span_id, service, model, version, name,
       status_message, duration_ms
FROM hits
WHERE rank <= $per_minute
ORDER BY environment, minute, start_time, trace_id

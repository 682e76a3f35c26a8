-- Up/down/no-data per environment minute: down when the error ratio is above the environment's threshold with at least 5 requests, or when there are no requests although the same minute of the week had a median of at least 1 over the 4 weeks before (both minimums configurable per environment).
WITH thresholds AS (
    SELECT unnest($slo_environments) AS environment, unnest($slo_thresholds) AS threshold,
           unnest($slo_min_requests) AS min_requests, unnest($slo_min_expected) AS min_expected
),
bounds AS (
    SELECT environment, min(minute) AS lo, (SELECT max(minute) FROM rollup_minutes) AS hi
    FROM rollup_minutes
    WHERE (len($environments) = 0 OR list_contains($environments, environment))
    GROUP BY ALL
),
grid AS (
    SELECT environment,
           unnest(generate_series(
               greatest(lo, coalesce($start::TIMESTAMPTZ - INTERVAL 28 DAY, lo)),
               least(hi, coalesce($end::TIMESTAMPTZ - INTERVAL 1 MINUTE, hi)),
               INTERVAL 1 MINUTE)) AS minute
    FROM bounds
),
counts AS (
    SELECT g.environment, g.minute,
           coalesce(r.requests, 0) AS requests, coalesce(r.errors, 0) AS errors
    FROM grid g
    LEFT JOIN rollup_minutes r USING (environment, minute)
),
history AS (
    SELECT *,
           list_aggregate([  -- median ignores the NULLs of weeks before the data starts
               lag(requests, 1) OVER w, lag(requests, 2) OVER w,
               lag(requests, 3) OVER w, lag(requests, 4) OVER w], 'median') AS expected
    FROM counts
    WINDOW w AS (PARTITION BY environment, (epoch(minute)::BIGINT // 60) % 10080 ORDER BY minute)
)
SELECT h.environment, h.minute, h.requests, h.errors, h.expected,
       CASE
           WHEN h.requests >= coalesce(t.min_requests, 5)
                AND h.errors / h.requests > coalesce(t.threshold, 0.05) THEN 'down'
           WHEN h.requests >= coalesce(t.min_requests, 5) THEN 'up'
           WHEN h.requests = 0 AND h.expected >= coalesce(t.min_expected, 1) THEN 'down'
           ELSE 'nodata'
       END AS state
FROM history h
LEFT JOIN thresholds t USING (environment)
WHERE ($start::TIMESTAMPTZ IS NULL OR h.minute >= $start)
  AND ($end::TIMESTAMPTZ IS NULL OR h.minute < $end)
ORDER BY h.environment, h.minute

-- Up/down/no-data per environment minute, from rollup_uptime_minutes: down when the error ratio is above the environment's threshold with at least 5 requests, or when there are no requests although the same minute of the week had a median of at least 1 over the 4 weeks before (both minimums configurable per environment). Minutes not in the rollup are silent with no usual traffic: no data. Unordered: every query wrapping it orders or aggregates (a sort of every minute here was three quarters of `metrics`'s uptime time).
WITH thresholds AS (
    SELECT unnest($slo_environments) AS environment, unnest($slo_thresholds) AS threshold,
           unnest($slo_min_requests) AS min_requests, unnest($slo_min_expected) AS min_expected
)
SELECT u.environment, u.minute, u.requests, u.errors, u.expected,
       CASE
           WHEN u.requests >= coalesce(t.min_requests, 5)
                AND u.errors / u.requests > coalesce(t.threshold, 0.05) THEN 'down'
           WHEN u.requests >= coalesce(t.min_requests, 5) THEN 'up'
           WHEN u.requests = 0 AND u.expected >= coalesce(t.min_expected, 1) THEN 'down'
           ELSE 'nodata'
       END AS state
FROM rollup_uptime_minutes u
LEFT JOIN thresholds t USING (environment)
WHERE ($start::TIMESTAMPTZ IS NULL OR u.minute >= $start)
  AND ($end::TIMESTAMPTZ IS NULL OR u.minute < $end)
  AND (len($environments) = 0 OR list_contains($environments, u.environment))

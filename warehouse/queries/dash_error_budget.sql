-- Rolling 30-day error budget per environment, ending at the newest hour of data: budget = (1 - availability target) x requests; left = 1 - errors / budget.
WITH targets AS (
    SELECT unnest($slo_environments::VARCHAR[]) AS environment,
           unnest($slo_availability::DOUBLE[]) AS target
),
window_end AS (
    SELECT max(hour) + INTERVAL 1 HOUR AS hi FROM rollup_hourly
),
totals AS (
    SELECT r.environment, sum(r.requests) AS requests, sum(r.errors) AS errors
    FROM rollup_hourly r, window_end w
    WHERE r.hour >= w.hi - INTERVAL 30 DAY AND r.hour < w.hi
      AND (len($environments) = 0 OR list_contains($environments, r.environment))
    GROUP BY ALL
)
SELECT t.environment,
       (SELECT hi - INTERVAL 30 DAY FROM window_end) AS window_start,
       (SELECT hi FROM window_end) AS window_end,
       t.requests, t.errors, g.target,
       (1 - g.target) * t.requests AS budget_errors,
       CASE WHEN (1 - g.target) * t.requests > 0
            THEN 1 - t.errors / ((1 - g.target) * t.requests) END AS budget_left
FROM totals t
LEFT JOIN targets g USING (environment)
ORDER BY t.environment

-- Requests and errors per (environment, model, hour or UTC day) from the hourly rollup; availability = 1 - errors / requests.
SELECT environment, model,
       timezone('UTC', date_trunc($grain, timezone('UTC', hour))) AS period,
       sum(requests) AS requests, sum(errors) AS errors,
       CASE WHEN sum(requests) > 0 THEN 1 - sum(errors) / sum(requests) END AS availability
FROM rollup_hourly
WHERE ($start::TIMESTAMPTZ IS NULL OR hour >= $start)
  AND ($end::TIMESTAMPTZ IS NULL OR hour < $end)
  AND (len($environments) = 0 OR list_contains($environments, environment))
  AND (len($models) = 0 OR list_contains($models, model))
GROUP BY ALL
ORDER BY environment, model, period

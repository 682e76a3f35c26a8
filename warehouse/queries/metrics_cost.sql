-- Allocated cost per group from cost_allocation in the reporting currency, on the full or, with $marginal, the marginal basis, over the UTC days whose midnight is in [$start, $end); an open end stops at the first or last day of any telemetry (spans or GPU samples), as metrics_gpu_cost.sql does, so that with no range the cost covers the days the other figures cover. A day's rows without a rate count as unconverted (warehouse/unit_costs.py names the currency).
WITH seen AS (
    SELECT CAST(timezone('UTC', min(lo)) AS DATE) AS first_day,
           CAST(timezone('UTC', max(hi)) AS DATE) AS last_day
    FROM (SELECT min(hour) AS lo, max(hour) AS hi FROM rollup_hourly
          UNION ALL
          SELECT min(hour), max(hour) FROM rollup_gpu_hours)
)
SELECT {group},
       sum(CASE WHEN $marginal THEN reporting_marginal_cost ELSE reporting_cost END) AS cost,
       list(DISTINCT reporting_currency) AS reporting_currencies,
       count(*) FILTER (WHERE reporting_cost IS NULL) AS unconverted,
       list(DISTINCT currency) FILTER (WHERE reporting_cost IS NULL) AS unconverted_currencies,
       min(timezone('UTC', day::TIMESTAMP)) FILTER (WHERE reporting_cost IS NULL)
           AS unconverted_from
FROM cost_allocation, seen
WHERE (CASE WHEN $start::TIMESTAMPTZ IS NULL THEN seen.first_day IS NULL OR day >= seen.first_day
            ELSE timezone('UTC', day::TIMESTAMP) >= $start END)
  AND (CASE WHEN $end::TIMESTAMPTZ IS NULL THEN seen.last_day IS NULL OR day <= seen.last_day
            ELSE timezone('UTC', day::TIMESTAMP) < $end END)
  AND (len($environments) = 0 OR list_contains($environments, environment))
  AND (len($models) = 0 OR list_contains($models, model))
GROUP BY ALL

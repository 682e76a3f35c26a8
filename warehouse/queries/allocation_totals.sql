-- Allocated cost per group (any of environment, model, cost_center, method) over the UTC days whose midnight is in [$start, $end), in the reporting currency (full, or marginal with $marginal), with the rows' reporting currency and what has no rate.
SELECT {group},
       sum(CASE WHEN $marginal THEN reporting_marginal_cost ELSE reporting_cost END) AS cost,
       list(DISTINCT reporting_currency) AS reporting_currencies,
       count(*) FILTER (WHERE reporting_cost IS NULL) AS unconverted,
       list(DISTINCT currency) FILTER (WHERE reporting_cost IS NULL) AS unconverted_currencies,
       min(timezone('UTC', day::TIMESTAMP)) FILTER (WHERE reporting_cost IS NULL)
           AS unconverted_from
FROM cost_allocation
WHERE timezone('UTC', day::TIMESTAMP) >= $start AND timezone('UTC', day::TIMESTAMP) < $end
GROUP BY ALL
ORDER BY cost DESC NULLS LAST, 1

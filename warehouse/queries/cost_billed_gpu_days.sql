-- What each environment without a cost model (a cloud) paid per UTC day, beside the GPU-hours its samples cover that day: the days whose midnight is in [$start, $end) (NULL: open) and that have GPU samples. The cost is the allocation's (cost_allocation: the ledger rows placed in the environment, on the full basis, since a billed GPU-hour costs the same used or idle), in the billing currency where the day has one (else NULL) and in the reporting currency (NULL where a row of the day has no rate). metrics_gpu_cost.sql and the GPUs page divide the cost by the GPU-hours: a cloud's counterpart of a modelled pool's cost per capacity GPU-hour.
WITH modelled AS (
    SELECT DISTINCT x_Environment AS environment FROM billing
    WHERE x_Modelled AND x_Environment IS NOT NULL
),
hours AS (
    SELECT environment, CAST(timezone('UTC', hour) AS DATE) AS day,
           sum(gpu_hours) AS gpu_hours,
           coalesce(sum(gpu_hours) FILTER (WHERE state <> 'busy'), 0) AS idle_gpu_hours,
           sum(energy_wh) / 1000 AS energy_kwh
    FROM rollup_gpu_hours
    WHERE environment NOT IN (SELECT environment FROM modelled)
      AND ($start::TIMESTAMPTZ IS NULL OR hour >= $start::TIMESTAMPTZ - INTERVAL 1 DAY)
      AND ($end::TIMESTAMPTZ IS NULL OR hour < $end::TIMESTAMPTZ + INTERVAL 1 DAY)
    GROUP BY ALL
    HAVING sum(gpu_hours) > 0
),
cost AS (
    SELECT environment, day,
           CASE WHEN count(DISTINCT currency) = 1 THEN any_value(currency) END AS currency,
           CASE WHEN count(DISTINCT currency) = 1 THEN sum(cost) END AS cost,
           CASE WHEN bool_and(reporting_cost IS NOT NULL) THEN sum(reporting_cost) END
               AS reporting_cost,
           any_value(reporting_currency) AS reporting_currency
    FROM cost_allocation
    WHERE environment <> 'unallocated'
      AND ($start::TIMESTAMPTZ IS NULL OR timezone('UTC', day::TIMESTAMP) >= $start)
      AND ($end::TIMESTAMPTZ IS NULL OR timezone('UTC', day::TIMESTAMP) < $end)
    GROUP BY ALL
)
SELECT environment, day, currency, cost, reporting_cost, reporting_currency,
       gpu_hours, idle_gpu_hours, energy_kwh
FROM cost JOIN hours USING (environment, day)
ORDER BY environment, day

-- The cost keys of `metrics`' GPU figures per environment over [$start, $end): emissions (kg CO2e, from the cost model; NULL where no grid intensity is configured) and the full cost per GPU-hour in the reporting currency $reporting: a modelled pool's cost over its capacity GPU-hours, each day's cost at its currency's rate that day (the `rates` of money_rates.sql; NULL when a day has no rate, counted in `unconverted`). An open end of the range stops at the environment's first or last day of GPU telemetry, so that with no range the cost covers the days the other keys cover, not every day since the purchase. An environment without a cost model (a cloud) has its allocated cost over the GPU-hours its samples cover, on the days that have samples (cost_billed_gpu_days.sql, spliced in).
WITH {rates},
seen AS (
    SELECT environment,
           min(hour AT TIME ZONE 'UTC')::DATE AS first_day,
           max(hour AT TIME ZONE 'UTC')::DATE AS last_day
    FROM rollup_gpu_hours
    GROUP BY ALL
),
items AS (
    SELECT x_Environment AS environment, x_Co2eKg, x_CapacityGpuHours, EffectiveCost,
           BillingCurrency, ChargePeriodStart
    FROM billing
    LEFT JOIN seen ON seen.environment = billing.x_Environment
    WHERE x_Modelled
      AND (CASE WHEN $start IS NULL THEN (ChargePeriodStart AT TIME ZONE 'UTC')::DATE >= seen.first_day
                ELSE ChargePeriodStart >= $start END)
      AND (CASE WHEN $end IS NULL THEN (ChargePeriodStart AT TIME ZONE 'UTC')::DATE <= seen.last_day
                ELSE ChargePeriodStart < $end END)
      AND (len($environments) = 0 OR list_contains($environments, x_Environment))
),
converted AS (
    SELECT i.*, r.rate
    FROM items i ASOF LEFT JOIN rates r
      ON i.BillingCurrency = r.currency AND i.ChargePeriodStart >= r.since
),
modelled AS (
    SELECT environment,
           sum(x_Co2eKg) AS co2e_kg,
           sum(CAST(EffectiveCost * rate AS DECIMAL(38, 12))) AS cost,
           sum(x_CapacityGpuHours) AS capacity_gpu_hours,
           count(*) FILTER (WHERE rate IS NULL) AS unconverted
    FROM converted
    GROUP BY ALL
),
billed AS (
    SELECT environment, NULL::DOUBLE AS co2e_kg, sum(reporting_cost) AS cost,
           sum(gpu_hours) AS capacity_gpu_hours,
           count(*) FILTER (WHERE reporting_cost IS NULL) AS unconverted
    FROM ({billed_days}) AS b
    WHERE len($environments) = 0 OR list_contains($environments, environment)
    GROUP BY ALL
)
SELECT environment, co2e_kg,
       CASE WHEN unconverted = 0
            THEN (cost / nullif(capacity_gpu_hours, 0))::DOUBLE END AS cost_per_gpu_hour,
       cost::DOUBLE AS cost, capacity_gpu_hours, unconverted
FROM (SELECT * FROM modelled UNION ALL BY NAME SELECT * FROM billed)
ORDER BY environment

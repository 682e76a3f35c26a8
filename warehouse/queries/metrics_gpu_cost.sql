-- The cost model's keys of `metrics` per environment over [$start, $end): emissions (kg CO2e; NULL where no grid intensity is configured) and the modelled full cost per capacity GPU-hour (NULL across currencies, which do not add up). An open end of the range stops at the environment's first or last day of GPU telemetry, so that with no range the cost covers the days the other keys cover, not every day since the purchase.
WITH seen AS (
    SELECT environment,
           min(hour AT TIME ZONE 'UTC')::DATE AS first_day,
           max(hour AT TIME ZONE 'UTC')::DATE AS last_day
    FROM rollup_gpu_hours
    GROUP BY ALL
)
SELECT x_Environment AS environment,
       sum(x_Co2eKg) AS co2e_kg,
       CASE WHEN count(DISTINCT BillingCurrency) = 1
            THEN (sum(EffectiveCost) / nullif(sum(x_CapacityGpuHours), 0))::DOUBLE END
           AS cost_per_gpu_hour,
       sum(EffectiveCost)::DOUBLE AS cost,
       sum(x_CapacityGpuHours) AS capacity_gpu_hours,
       any_value(BillingCurrency) AS currency,
       count(DISTINCT BillingCurrency) AS currencies
FROM billing
LEFT JOIN seen ON seen.environment = billing.x_Environment
WHERE x_Modelled
  AND (CASE WHEN $start IS NULL THEN (ChargePeriodStart AT TIME ZONE 'UTC')::DATE >= seen.first_day
            ELSE ChargePeriodStart >= $start END)
  AND (CASE WHEN $end IS NULL THEN (ChargePeriodStart AT TIME ZONE 'UTC')::DATE <= seen.last_day
            ELSE ChargePeriodStart < $end END)
  AND (len($environments) = 0 OR list_contains($environments, x_Environment))
GROUP BY ALL
ORDER BY environment

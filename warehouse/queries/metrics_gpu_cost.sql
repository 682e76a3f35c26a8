-- The cost model's keys of `metrics` per environment over [$start, $end): emissions (kg CO2e; NULL where no grid intensity is configured) and the modelled full cost per capacity GPU-hour (NULL across currencies, which do not add up).
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
WHERE x_Modelled
  AND ($start IS NULL OR ChargePeriodStart >= $start)
  AND ($end IS NULL OR ChargePeriodStart < $end)
  AND (len($environments) = 0 OR list_contains($environments, x_Environment))
GROUP BY ALL
ORDER BY environment

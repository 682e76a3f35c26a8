-- Modelled on-prem and edge cost per environment, UTC day and currency in [$lo, $hi): full cost, its parts and idle split, capacity, energy and emissions.
SELECT x_Environment AS environment,
       CAST(timezone('UTC', ChargePeriodStart) AS DATE) AS day,
       BillingCurrency AS currency,
       sum(EffectiveCost) AS cost,
       sum(x_AmortizationCost) AS amortization_cost,
       sum(x_EnergyCost) AS energy_cost,
       sum(x_FixedCost) AS fixed_cost,
       sum(x_BusyCost) AS busy_cost,
       sum(x_IdleHeldCost) AS idle_held_cost,
       sum(x_IdleFreeCost) AS idle_free_cost,
       sum(x_UnmonitoredCost) AS unmonitored_cost,
       sum(x_CapacityGpuHours) AS capacity_gpu_hours,
       sum(EffectiveCost) / sum(x_CapacityGpuHours)::DECIMAL(38, 12) AS cost_per_gpu_hour,
       sum(x_EnergyKwh) AS energy_kwh,
       sum(x_Co2eKg) AS co2e_kg
FROM billing
WHERE x_Modelled
  AND ChargePeriodStart >= $lo AND ChargePeriodStart < $hi
GROUP BY ALL
ORDER BY environment, day, currency

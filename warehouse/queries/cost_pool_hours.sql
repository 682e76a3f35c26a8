-- The cost model's measured inputs: GPU-hours by kind and GPU energy per environment, pool and UTC day in [$lo, $hi).
SELECT environment,
       pool,
       CAST(timezone('UTC', hour) AS DATE) AS day,
       coalesce(sum(gpu_hours) FILTER (WHERE state = 'busy'), 0) AS busy_gpu_hours,
       coalesce(sum(gpu_hours) FILTER (WHERE state = 'idle-held'), 0) AS idle_held_gpu_hours,
       coalesce(sum(gpu_hours) FILTER (WHERE state = 'idle-free'), 0) AS idle_free_gpu_hours,
       coalesce(sum(energy_wh) FILTER (WHERE isfinite(energy_wh) AND energy_wh >= 0), 0) AS energy_wh,
       count(*) FILTER (WHERE NOT isfinite(energy_wh) OR energy_wh < 0) AS bad_energy_rows
FROM rollup_gpu_hours
WHERE hour >= $lo AND hour < $hi
  AND list_contains($environments, environment)
  AND pool IS NOT NULL
GROUP BY ALL
ORDER BY environment, pool, day

-- GPU-hours by state, mean utilization, energy (kWh, the GPUs' own) and mean power per environment and UTC day, from rollup_gpu_hours.
SELECT environment, date_trunc('day', hour) AS day,
       sum(gpu_hours) AS gpu_hours,
       coalesce(sum(gpu_hours) FILTER (WHERE state = 'busy'), 0) AS busy_gpu_hours,
       coalesce(sum(gpu_hours) FILTER (WHERE state = 'idle-held'), 0) AS idle_held_gpu_hours,
       coalesce(sum(gpu_hours) FILTER (WHERE state = 'idle-free'), 0) AS idle_free_gpu_hours,
       sum(util_mean * gpu_hours) / nullif(sum(gpu_hours) FILTER (WHERE util_mean IS NOT NULL), 0)
           AS util_mean,
       sum(energy_wh) / 1000 AS energy_kwh
FROM rollup_gpu_hours
WHERE hour >= $start AND hour < $end
  AND (len($environments) = 0 OR list_contains($environments, environment))
GROUP BY ALL
ORDER BY environment, day

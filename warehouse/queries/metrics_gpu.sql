-- GPU figures per environment over whole hours [$start, $end): GPU-hours by state and energy from rollup_gpu_hours, and the utilization sum and count over the samples themselves (gpu_util_mean is a mean over samples, each counting once; the fleet's adds these up).
SELECT environment,
       sum(gpu_hours) AS gpu_hours,
       sum(idle_held_gpu_hours) AS idle_held_gpu_hours,
       sum(idle_free_gpu_hours) AS idle_free_gpu_hours,
       sum(energy_wh) AS energy_wh,
       sum(util_sum) AS util_sum,
       sum(util_n)::BIGINT AS util_n
FROM (
    SELECT environment, gpu_hours,
           CASE WHEN state = $idle_held THEN gpu_hours ELSE 0 END AS idle_held_gpu_hours,
           CASE WHEN state = $idle_free THEN gpu_hours ELSE 0 END AS idle_free_gpu_hours,
           energy_wh
    FROM rollup_gpu_hours
    WHERE ($start::TIMESTAMPTZ IS NULL OR hour >= $start)
      AND ($end::TIMESTAMPTZ IS NULL OR hour < $end)
      AND (len($environments) = 0 OR list_contains($environments, environment))
    UNION ALL BY NAME
    SELECT environment, sum(utilization) AS util_sum, count(utilization) AS util_n
    FROM gpu_samples
    WHERE ($start::TIMESTAMPTZ IS NULL OR ts >= $start)
      AND ($end::TIMESTAMPTZ IS NULL OR ts < $end)
      AND (len($environments) = 0 OR list_contains($environments, environment))
    GROUP BY environment
)
GROUP BY environment

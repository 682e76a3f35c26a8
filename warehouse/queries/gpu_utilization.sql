-- GPU-hour-weighted utilization and SM activity per GPU (or MIG instance) and UTC $grain, from rollup_gpu_hours: what the GPUs page's heatmap draws.
SELECT environment, pool, host, gpu_uuid, mig_instance,
       any_value(gpu_model) AS gpu_model,
       date_trunc($grain, hour) AS period,
       sum(util_mean * gpu_hours) / nullif(sum(gpu_hours) FILTER (WHERE util_mean IS NOT NULL), 0)
           AS util_mean,
       max(util_max) AS util_max,
       sum(sm_active_mean * gpu_hours)
           / nullif(sum(gpu_hours) FILTER (WHERE sm_active_mean IS NOT NULL), 0) AS sm_active_mean,
       sum(gpu_hours) AS gpu_hours
FROM rollup_gpu_hours
WHERE hour >= $start AND hour < $end
  AND (len($environments) = 0 OR list_contains($environments, environment))
GROUP BY ALL
ORDER BY environment, pool, host, gpu_uuid, mig_instance, period

-- One row per GPU (or MIG instance) over [$start, $end): its GPU-hours by state, utilization, memory headroom, power and energy, the workload that held it most (a time-sliced GPU's workloads, comma-separated), and for how many hours up to its newest hour it has been idle without a break (the current idle streak).
WITH hours AS (
    SELECT * FROM rollup_gpu_hours
    WHERE hour >= $start AND hour < $end
      AND (len($environments) = 0 OR list_contains($environments, environment))
),
newest AS (
    SELECT environment, host, gpu_uuid, mig_instance, max(hour) AS last_hour,
           max(hour) FILTER (WHERE state = 'busy') AS last_busy
    FROM hours GROUP BY ALL
),
held AS (
    SELECT environment, host, gpu_uuid, mig_instance,
           arg_max(coalesce(array_to_string(workloads, ', '), workload), gpu_hours) AS workload
    FROM hours WHERE workload IS NOT NULL GROUP BY ALL
)
SELECT h.environment, any_value(h.pool) AS pool, h.host, h.gpu_uuid, h.mig_instance,
       any_value(h.gpu_model) AS gpu_model, any_value(h.gpu_share) AS gpu_share,
       any_value(w.workload) AS workload,
       sum(h.gpu_hours) AS gpu_hours,
       coalesce(sum(h.gpu_hours) FILTER (WHERE h.state = 'busy'), 0) AS busy_gpu_hours,
       coalesce(sum(h.gpu_hours) FILTER (WHERE h.state = 'idle-held'), 0) AS idle_held_gpu_hours,
       coalesce(sum(h.gpu_hours) FILTER (WHERE h.state = 'idle-free'), 0) AS idle_free_gpu_hours,
       sum(h.util_mean * h.gpu_hours) / nullif(sum(h.gpu_hours) FILTER (WHERE h.util_mean IS NOT NULL), 0)
           AS util_mean,
       sum(h.sm_active_mean * h.gpu_hours)
           / nullif(sum(h.gpu_hours) FILTER (WHERE h.sm_active_mean IS NOT NULL), 0) AS sm_active_mean,
       avg(h.memory_used_mib_mean) AS memory_used_mib_mean,
       min(h.memory_headroom_mib_min) AS memory_headroom_mib_min,
       avg(h.power_w_mean) AS power_w_mean,
       sum(h.energy_wh) AS energy_wh,
       any_value(n.last_hour) AS last_hour,
       any_value(n.last_busy) AS last_busy,
       CASE WHEN any_value(n.last_busy) IS NULL THEN count(*)
            ELSE count(*) FILTER (WHERE h.hour > n.last_busy) END AS idle_streak_hours
FROM hours h
JOIN newest n USING (environment, host, gpu_uuid, mig_instance)
LEFT JOIN held w USING (environment, host, gpu_uuid, mig_instance)
GROUP BY h.environment, h.host, h.gpu_uuid, h.mig_instance
ORDER BY h.environment, pool, h.host, h.gpu_uuid, h.mig_instance

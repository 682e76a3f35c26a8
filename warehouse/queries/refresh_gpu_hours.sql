-- Rebuild rollup_gpu_hours for the hours [$lo_hour, $hi_hour) (hour numbers since the epoch, UTC), run by warehouse/gpu_rollups.py after each publish of gpu_samples.
-- A sample stands for the time to the next sample of the same GPU (host, gpu_uuid, mig_instance), at most $cap_us microseconds; its interval is split across the hours it spans.
-- The samples read are those in [$lo_ts, $hi_ts): the rebuilt hours widened by the cap, so every sample whose interval reaches into them, and its next sample, is seen.
-- Times are whole microseconds and hours whole numbers, so the split and the covered time are exact (and an hour's rows do not depend on the session's time zone).
-- host_id is the host's cloud id (migration 011), the largest of the hour's: a host has one at a time, and NULL where no sample named it.
-- workloads (migration 012) lists the workloads of a time-sliced GPU: the hour goes to the holder the GPU had longest, a workload or, for a shared GPU, the list of its workloads, which the allocation splits the hour between.
-- {state} is warehouse/gpu_definitions.py's state rule and {increase} its counter-increase rule, put in as SQL text.
DELETE FROM rollup_gpu_hours
WHERE hour >= to_timestamp($lo_hour * 3600) AND hour < to_timestamp($hi_hour * 3600);
INSERT INTO rollup_gpu_hours
WITH nearby AS (
    SELECT epoch_us(ts) AS ts_us, environment, pool, host, host_id, gpu_uuid, mig_instance,
           gpu_model, gpu_share, workload, workloads, utilization,
           coalesce(sm_active, gr_engine_active) AS sm_active,
           memory_used_mib, memory_free_mib, power_w, energy_mj,
           epoch_us(lead(ts) OVER gpu) AS next_us,
           lead(energy_mj) OVER gpu AS next_energy_mj
    FROM gpu_samples
    WHERE ts >= $lo_ts AND ts < $hi_ts
    WINDOW gpu AS (PARTITION BY host, gpu_uuid, mig_instance ORDER BY ts)
),
intervals AS (
    SELECT *,
           least(coalesce(next_us, ts_us + $cap_us), ts_us + $cap_us) AS end_us,
           ts_us // 3600000000 AS sample_hour,
           -- Wh per microsecond of the interval: the counter's increase to the next sample
           -- when that is within the cap, else the power draw integrated (across a longer
           -- gap the increase cannot be placed in hours, and the gap is unmonitored)
           CASE WHEN energy_mj IS NOT NULL AND next_energy_mj IS NOT NULL
                     AND next_us - ts_us <= $cap_us
                THEN ({increase}) / 3600000.0 / (next_us - ts_us)
                ELSE power_w / 3600.0 / 1000000.0 END AS wh_per_us
    FROM nearby
    WHERE ts_us < $hi_hour * 3600000000
),
spread AS (
    -- almost every interval lies within one hour: only the others pay for a series
    SELECT *, sample_hour AS hour FROM intervals
    WHERE (end_us - 1) // 3600000000 = sample_hour
    UNION ALL
    SELECT *, unnest(generate_series(sample_hour, (end_us - 1) // 3600000000)) AS hour
    FROM intervals
    WHERE (end_us - 1) // 3600000000 > sample_hour
),
pieces AS (
    SELECT *,
           least(end_us, (hour + 1) * 3600000000) - greatest(ts_us, hour * 3600000000) AS us
    FROM spread
    WHERE hour >= $lo_hour AND hour < $hi_hour
),
by_workload AS (
    SELECT hour, environment, pool, host, gpu_uuid, mig_instance, workload, workloads,
           max(gpu_model) AS gpu_model, max(gpu_share) AS gpu_share, max(host_id) AS host_id,
           count(*) FILTER (WHERE hour = sample_hour) AS samples,
           sum(us)::BIGINT AS us,
           sum(us * gpu_share) AS share_us,
           sum(utilization * us) AS util_sum, sum(us) FILTER (WHERE utilization IS NOT NULL) AS util_us,
           max(utilization) AS util_max,
           sum(sm_active * us) AS sm_sum, sum(us) FILTER (WHERE sm_active IS NOT NULL) AS sm_us,
           sum(memory_used_mib * us) AS mem_sum,
           sum(us) FILTER (WHERE memory_used_mib IS NOT NULL) AS mem_us,
           min(memory_free_mib) AS headroom_min,
           sum(power_w * us) AS power_sum, sum(us) FILTER (WHERE power_w IS NOT NULL) AS power_us,
           sum(wh_per_us * us) AS energy_wh
    FROM pieces
    GROUP BY hour, environment, pool, host, gpu_uuid, mig_instance, workload, workloads
),
hours AS (
    SELECT to_timestamp(hour * 3600) AS hour, environment, pool, host, gpu_uuid, mig_instance,
           max(gpu_model) AS gpu_model, max(gpu_share) AS gpu_share, max(host_id) AS host_id,
           -- the workload that held the GPU longest; "nothing" competes too, and a tie always
           -- goes to the same one (the name last in order), so a rebuild picks what it picked
           arg_max_null(workload, (us, coalesce(workload, ''), coalesce(workloads, []))) AS workload,
           arg_max_null(workloads, (us, coalesce(workload, ''), coalesce(workloads, []))) AS workloads,
           sum(samples)::BIGINT AS samples,
           sum(share_us) / 3600000000.0 AS gpu_hours,
           sum(util_sum) / sum(util_us) AS util_mean,
           max(util_max) AS util_max,
           sum(sm_sum) / sum(sm_us) AS sm_active_mean,
           sum(mem_sum) / sum(mem_us) AS memory_used_mib_mean,
           min(headroom_min) AS memory_headroom_mib_min,
           sum(power_sum) / sum(power_us) AS power_w_mean,
           sum(energy_wh) AS energy_wh
    FROM by_workload
    GROUP BY ALL
)
SELECT hour, environment, pool, host, gpu_uuid, mig_instance, gpu_model, gpu_share, workload,
       samples, gpu_hours, util_mean, util_max, sm_active_mean, memory_used_mib_mean,
       memory_headroom_mib_min, power_w_mean, energy_wh,
       {state} AS state, host_id, workloads
FROM hours

-- GPU figures per group ({group}: `environment` or the fleet) over whole hours [$start, $end): GPU-hours by state and energy from rollup_gpu_hours, and the utilization mean over the samples themselves (each sample counts once, as DESIGN.md's gpu_util_mean says).
WITH hours AS (
    SELECT {group},
           sum(gpu_hours) AS gpu_hours,
           coalesce(sum(gpu_hours) FILTER (WHERE state = $idle_held), 0) AS idle_held_gpu_hours,
           coalesce(sum(gpu_hours) FILTER (WHERE state = $idle_free), 0) AS idle_free_gpu_hours,
           sum(energy_wh) / 1000.0 AS energy_kwh
    FROM rollup_gpu_hours
    WHERE ($start::TIMESTAMPTZ IS NULL OR hour >= $start)
      AND ($end::TIMESTAMPTZ IS NULL OR hour < $end)
      AND (len($environments) = 0 OR list_contains($environments, environment))
    GROUP BY ALL
),
samples AS (
    SELECT {group}, avg(utilization) AS gpu_util_mean
    FROM gpu_samples
    WHERE ($start::TIMESTAMPTZ IS NULL OR ts >= $start)
      AND ($end::TIMESTAMPTZ IS NULL OR ts < $end)
      AND (len($environments) = 0 OR list_contains($environments, environment))
    GROUP BY ALL
)
SELECT * FROM hours FULL JOIN samples USING ({key})

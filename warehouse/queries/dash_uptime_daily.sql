-- Up, down and no-data minutes per environment and UTC day, judged by uptime_minutes.sql (spliced in below); every minute of an environment's own span (its first to its last minute with requests) not judged up or down is no data; uptime = up / (up + down).
WITH minutes AS (
{uptime_minutes}
),
judged AS (
    SELECT environment, epoch(minute)::BIGINT // 86400 AS d,
           count(*) FILTER (WHERE state = 'up') AS up_minutes,
           count(*) FILTER (WHERE state = 'down') AS down_minutes
    FROM minutes
    GROUP BY ALL
),
spans AS (  -- epoch minutes, both ends included, clipped to [$start, $end)
    SELECT environment,
           greatest(epoch(first_minute)::BIGINT // 60,
                    coalesce(ceil(epoch($start::TIMESTAMPTZ) / 60)::BIGINT, 0)) AS lo_m,
           least(epoch(last_minute)::BIGINT // 60,
                 coalesce(ceil(epoch($end::TIMESTAMPTZ) / 60)::BIGINT - 1,
                          epoch(last_minute)::BIGINT // 60)) AS hi_m
    FROM rollup_uptime_bounds
    WHERE (len($environments) = 0 OR list_contains($environments, environment))
),
days AS (
    SELECT environment, lo_m, hi_m, unnest(range(lo_m // 1440, hi_m // 1440 + 1)) AS d
    FROM spans
    WHERE hi_m >= lo_m
)
SELECT s.environment, to_timestamp(s.d * 86400) AS day,
       coalesce(j.up_minutes, 0) AS up_minutes,
       coalesce(j.down_minutes, 0) AS down_minutes,
       least(s.hi_m, (s.d + 1) * 1440 - 1) - greatest(s.lo_m, s.d * 1440) + 1
           - coalesce(j.up_minutes, 0) - coalesce(j.down_minutes, 0) AS nodata_minutes,
       CASE WHEN coalesce(j.up_minutes, 0) + coalesce(j.down_minutes, 0) > 0
            THEN j.up_minutes / (j.up_minutes + j.down_minutes) END AS uptime
FROM days s
LEFT JOIN judged j USING (environment, d)
ORDER BY s.environment, day

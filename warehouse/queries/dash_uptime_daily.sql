-- Up, down and no-data minutes per environment and UTC day, judged by uptime_minutes.sql (spliced in below); uptime = up / (up + down).
WITH minutes AS (
{uptime_minutes}
)
SELECT environment,
       timezone('UTC', date_trunc('day', timezone('UTC', minute))) AS day,
       count(*) FILTER (WHERE state = 'up') AS up_minutes,
       count(*) FILTER (WHERE state = 'down') AS down_minutes,
       count(*) FILTER (WHERE state = 'nodata') AS nodata_minutes,
       CASE WHEN count(*) FILTER (WHERE state <> 'nodata') > 0
            THEN count(*) FILTER (WHERE state = 'up') / count(*) FILTER (WHERE state <> 'nodata')
       END AS uptime
FROM minutes
GROUP BY ALL
ORDER BY environment, day

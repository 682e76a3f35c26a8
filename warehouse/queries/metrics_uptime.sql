-- Up and down minutes and uptime per environment over the range, judged by uptime_minutes.sql (spliced in below), over every selected environment, or with a model filter those that served a selected model in an hour overlapping the range (uptime itself counts all models); uptime = up / (up + down).
WITH minutes AS (
{uptime_minutes}
)
SELECT environment,
       count(*) FILTER (WHERE state = 'up') AS up_minutes,
       count(*) FILTER (WHERE state = 'down') AS down_minutes,
       CASE WHEN count(*) FILTER (WHERE state <> 'nodata') > 0
            THEN count(*) FILTER (WHERE state = 'up') / count(*) FILTER (WHERE state <> 'nodata')
       END AS uptime
FROM minutes
GROUP BY environment
HAVING len($models) = 0 OR environment IN (
    SELECT environment FROM rollup_hourly
    WHERE ($start::TIMESTAMPTZ IS NULL OR hour > $start::TIMESTAMPTZ - INTERVAL 1 HOUR)
      AND ($end::TIMESTAMPTZ IS NULL OR hour < $end)
      AND list_contains($models, model)
)

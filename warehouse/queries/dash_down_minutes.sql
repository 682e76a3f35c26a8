-- Every down minute per environment, judged by uptime_minutes.sql (spliced in below), with why it was judged down.
WITH minutes AS (
{uptime_minutes}
)
SELECT environment, minute, requests, errors, expected,
       CASE WHEN requests > 0 THEN 'errors' ELSE 'no traffic' END AS cause
FROM minutes
WHERE state = 'down'
ORDER BY environment, minute

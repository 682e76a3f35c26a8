-- Environments and models present in the rollups, with their first and last hour and request count.
SELECT environment, model,
       min(hour) AS first_hour, max(hour) AS last_hour, sum(requests) AS requests
FROM rollup_hourly
GROUP BY ALL
ORDER BY environment, model

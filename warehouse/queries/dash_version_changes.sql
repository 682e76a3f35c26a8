-- When each version of each (environment, model) served its first and last request, and how many it served.
SELECT environment, model, coalesce(version, 'unknown') AS version,
       min(start_time) AS first_seen, max(start_time) AS last_seen, sum(sample_weight) AS requests
FROM spans
WHERE is_request
  AND (len($environments) = 0 OR list_contains($environments, environment))
  AND (len($models) = 0 OR list_contains($models, model))
GROUP BY ALL
ORDER BY environment, model, first_seen

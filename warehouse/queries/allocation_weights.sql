-- The allocation keys per UTC day in $days: GPU-hours held (busy or idle-held, the hours the cost model charges to usage) per environment, pool and workload (NULL: busy with no workload mapped; a time-sliced GPU's hours split between its workloads, migration 012), and requests and tokens (input + output) per environment and model from the hourly rollup; `source` says which.
SELECT 'gpu' AS source, CAST(timezone('UTC', hour) AS DATE) AS day, environment, pool,
       workload AS model, sum(gpu_hours) AS weight
FROM workload_gpu_hours()
WHERE hour >= $lo AND hour < $hi AND state IN ('busy', 'idle-held')
  AND list_contains($days, CAST(timezone('UTC', hour) AS DATE))
GROUP BY ALL
HAVING sum(gpu_hours) > 0
UNION ALL
SELECT 'requests', CAST(timezone('UTC', hour) AS DATE), environment, NULL, model,
       sum(requests)
FROM rollup_hourly
WHERE hour >= $lo AND hour < $hi AND list_contains($days, CAST(timezone('UTC', hour) AS DATE))
GROUP BY ALL
HAVING sum(requests) > 0
UNION ALL
SELECT 'tokens', CAST(timezone('UTC', hour) AS DATE), environment, NULL, model,
       sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0))::DOUBLE
FROM rollup_hourly
WHERE hour >= $lo AND hour < $hi AND list_contains($days, CAST(timezone('UTC', hour) AS DATE))
GROUP BY ALL
HAVING sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)) > 0

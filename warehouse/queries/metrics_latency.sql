-- p50/p95/p99 latency per group from the mergeable log-bucket histogram (rank q*(n-1), as numpy's default).
WITH h AS (
    SELECT {group}, bucket, sum(n) AS n
    FROM rollup_latency
    WHERE ($start::TIMESTAMPTZ IS NULL OR hour >= $start)
      AND ($end::TIMESTAMPTZ IS NULL OR hour < $end)
      AND (len($environments) = 0 OR list_contains($environments, environment))
      AND (len($models) = 0 OR list_contains($models, model))
    GROUP BY ALL
),
c AS (
    SELECT *,
           sum(n) OVER (PARTITION BY {group} ORDER BY bucket
                        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum,
           sum(n) OVER (PARTITION BY {group}) AS total
    FROM h
),
q AS (
    SELECT {group},
           min(bucket) FILTER (WHERE cum > 0.50 * (total - 1)) AS b50,
           min(bucket) FILTER (WHERE cum > 0.95 * (total - 1)) AS b95,
           min(bucket) FILTER (WHERE cum > 0.99 * (total - 1)) AS b99
    FROM c GROUP BY ALL
)
SELECT {group},
       CASE WHEN b50 = -100000 THEN 0 ELSE 2 * pow($gamma, b50) / ($gamma + 1) END AS latency_p50_ms,
       CASE WHEN b95 = -100000 THEN 0 ELSE 2 * pow($gamma, b95) / ($gamma + 1) END AS latency_p95_ms,
       CASE WHEN b99 = -100000 THEN 0 ELSE 2 * pow($gamma, b99) / ($gamma + 1) END AS latency_p99_ms
FROM q

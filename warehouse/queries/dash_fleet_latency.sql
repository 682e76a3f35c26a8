-- p50/p95/p99 over every selected request together (the fleet KPI), interpolated between ranks floor(q*(n-1)) and ceil(q*(n-1)) exactly as metrics_latency.sql does.
WITH h AS (
    SELECT bucket, sum(n) AS n
    FROM rollup_latency
    WHERE ($start::TIMESTAMPTZ IS NULL OR hour >= $start)
      AND ($end::TIMESTAMPTZ IS NULL OR hour < $end)
      AND (len($environments) = 0 OR list_contains($environments, environment))
      AND (len($models) = 0 OR list_contains($models, model))
    GROUP BY ALL
),
c AS (
    SELECT *,
           sum(n) OVER (ORDER BY bucket ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum,
           sum(n) OVER () AS total
    FROM h
),
ranks AS (  -- the buckets holding the two values either side of rank q*(n-1)
    SELECT q, any_value(total) AS requests, any_value(rank) AS rank,
           min(bucket) FILTER (WHERE cum > floor(rank)) AS b_lo,
           min(bucket) FILTER (WHERE cum > ceil(rank)) AS b_hi
    FROM (SELECT *, q * (total - 1) AS rank
          FROM c CROSS JOIN (VALUES (0.50), (0.95), (0.99)) qs(q))
    GROUP BY q
),
bounds AS (
    SELECT q, requests, rank,
           CASE WHEN b_lo = -100000 THEN 0
                ELSE 2 * pow($gamma, b_lo) / ($gamma + 1) END AS v_lo,
           CASE WHEN coalesce(b_hi, b_lo) = -100000 THEN 0
                ELSE 2 * pow($gamma, coalesce(b_hi, b_lo)) / ($gamma + 1) END AS v_hi
    FROM ranks
)
SELECT any_value(requests) AS requests,
       any_value(v_lo + (rank - floor(rank)) * (v_hi - v_lo)) FILTER (WHERE q = 0.50)
           AS latency_p50_ms,
       any_value(v_lo + (rank - floor(rank)) * (v_hi - v_lo)) FILTER (WHERE q = 0.95)
           AS latency_p95_ms,
       any_value(v_lo + (rank - floor(rank)) * (v_hi - v_lo)) FILTER (WHERE q = 0.99)
           AS latency_p99_ms
FROM bounds
HAVING count(*) > 0

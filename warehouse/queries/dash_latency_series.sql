-- p50/p95/p99 per (environment, model, UTC hour or day) from the log-bucket histogram, interpolated between ranks floor(q*(n-1)) and ceil(q*(n-1)) exactly as metrics_latency.sql does (tests/test_dashboard_reads.py holds them equal).
WITH h AS (
    SELECT environment, model,
           timezone('UTC', date_trunc($grain, timezone('UTC', hour))) AS period,
           bucket, sum(n) AS n
    FROM rollup_latency
    WHERE ($start::TIMESTAMPTZ IS NULL OR hour >= $start)
      AND ($end::TIMESTAMPTZ IS NULL OR hour < $end)
      AND (len($environments) = 0 OR list_contains($environments, environment))
      AND (len($models) = 0 OR list_contains($models, model))
    GROUP BY ALL
),
c AS (
    SELECT *,
           sum(n) OVER (PARTITION BY environment, model, period ORDER BY bucket
                        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum,
           sum(n) OVER (PARTITION BY environment, model, period) AS total
    FROM h
),
ranks AS (  -- the buckets holding the two values either side of rank q*(n-1)
    SELECT environment, model, period, q, any_value(total) AS requests,
           any_value(rank) AS rank,
           min(bucket) FILTER (WHERE cum > floor(rank)) AS b_lo,
           min(bucket) FILTER (WHERE cum > ceil(rank)) AS b_hi
    FROM (SELECT *, q * (total - 1) AS rank
          FROM c CROSS JOIN (VALUES (0.50), (0.95), (0.99)) qs(q))
    GROUP BY environment, model, period, q
),
bounds AS (  -- a bucket read as its midpoint is within 0.5% of every value in it
    SELECT environment, model, period, q, requests, rank,
           CASE WHEN b_lo = -100000 THEN 0
                ELSE 2 * pow($gamma, b_lo) / ($gamma + 1) END AS v_lo,
           CASE WHEN coalesce(b_hi, b_lo) = -100000 THEN 0
                ELSE 2 * pow($gamma, coalesce(b_hi, b_lo)) / ($gamma + 1) END AS v_hi
    FROM ranks
)
SELECT environment, model, period, any_value(requests) AS requests,
       any_value(v_lo + (rank - floor(rank)) * (v_hi - v_lo)) FILTER (WHERE q = 0.50)
           AS latency_p50_ms,
       any_value(v_lo + (rank - floor(rank)) * (v_hi - v_lo)) FILTER (WHERE q = 0.95)
           AS latency_p95_ms,
       any_value(v_lo + (rank - floor(rank)) * (v_hi - v_lo)) FILTER (WHERE q = 0.99)
           AS latency_p99_ms
FROM bounds
GROUP BY environment, model, period
ORDER BY environment, model, period

-- p50/p95/p99 latency per group from the mergeable log-bucket histogram, interpolated between ranks floor(q*(n-1)) and ceil(q*(n-1)) as numpy's default does. The one percentile query: `metrics`, the latency charts (group by period, the UTC $grain) and the fleet KPI (group by fleet, one group of every request) all run it. {group} is an allow-listed column list; the bucket ratio is the one the rollup was built with, from _meta.
WITH h AS (
    SELECT {group}, bucket, sum(n) AS n
    FROM (
        SELECT *, timezone('UTC', date_trunc($grain, timezone('UTC', hour))) AS period,
               'all' AS fleet
        FROM (  -- whole UTC days [$day_lo, $day_hi) from the daily histogram, the rest by hour
            SELECT day AS hour, environment, model, version, bucket, n
            FROM rollup_latency_daily
            WHERE day >= $day_lo AND day < $day_hi
            UNION ALL
            SELECT hour, environment, model, version, bucket, n
            FROM rollup_latency
            WHERE hour < $day_lo OR hour >= $day_hi
        )
    )
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
ranks AS (  -- the buckets holding the two values either side of rank q*(n-1)
    SELECT {group}, q, any_value(total) AS requests, any_value(rank) AS rank,
           min(bucket) FILTER (WHERE cum > floor(rank)) AS b_lo,
           min(bucket) FILTER (WHERE cum > ceil(rank)) AS b_hi
    FROM (SELECT *, q * (total - 1) AS rank
          FROM c CROSS JOIN (VALUES (0.50), (0.95), (0.99)) qs(q))
    GROUP BY {group}, q
),
g AS (
    SELECT value::DOUBLE AS gamma FROM _meta WHERE key = 'latency_gamma'
),
bounds AS (  -- a bucket read as its midpoint (latency_bucket_ms, migration 004)
    SELECT {group}, q, requests, rank,
           latency_bucket_ms(b_lo, g.gamma) AS v_lo,
           latency_bucket_ms(coalesce(b_hi, b_lo), g.gamma) AS v_hi
    FROM ranks CROSS JOIN g
)
SELECT {group}, any_value(requests) AS requests,
       any_value(v_lo + (rank - floor(rank)) * (v_hi - v_lo)) FILTER (WHERE q = 0.50)
           AS latency_p50_ms,
       any_value(v_lo + (rank - floor(rank)) * (v_hi - v_lo)) FILTER (WHERE q = 0.95)
           AS latency_p95_ms,
       any_value(v_lo + (rank - floor(rank)) * (v_hi - v_lo)) FILTER (WHERE q = 0.99)
           AS latency_p99_ms
FROM bounds
GROUP BY {group}

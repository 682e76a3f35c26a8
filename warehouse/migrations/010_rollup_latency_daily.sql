-- 010: the latency histogram per UTC day, the sum of rollup_latency's hours. A range of
-- whole days reads it instead of 24 hours of buckets each (5x fewer rows: `metrics` over
-- 90 days spent half its query time merging hourly buckets). refresh_rollups.sql rebuilds
-- the days of the hours it rebuilds, in the same transaction.
CREATE TABLE IF NOT EXISTS rollup_latency_daily (
    day TIMESTAMPTZ NOT NULL,
    environment VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    bucket INTEGER NOT NULL,
    n DOUBLE NOT NULL
);
DELETE FROM rollup_latency_daily;
INSERT INTO rollup_latency_daily
SELECT timezone('UTC', date_trunc('day', timezone('UTC', hour))) AS day, environment, model,
       version, bucket, sum(n) AS n
FROM rollup_latency
GROUP BY ALL
ORDER BY day;

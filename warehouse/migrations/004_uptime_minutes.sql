-- 004: the uptime inputs of every environment minute that can be judged, kept current at publish time by refresh_minute_verdicts (warehouse/uptime.py), so a page reads them instead of rebuilding a grid of minutes.
-- A row exists for each minute with requests and for each minute one to four weeks after
-- one (the only silent minutes whose usual traffic can be above zero); any other minute
-- of an environment is silent with no usual traffic, hence "no data". `expected` is the
-- median requests of the same minute of the week over the four weeks before, ignoring
-- weeks before the environment's first minute (NULL when there are none).
CREATE TABLE IF NOT EXISTS rollup_uptime_minutes (
    environment VARCHAR NOT NULL,
    minute TIMESTAMPTZ NOT NULL,
    requests DOUBLE NOT NULL,
    errors DOUBLE NOT NULL,
    expected DOUBLE
);

-- Each environment's first and last minute with requests: the span of minutes it is
-- judged over (its own, never another environment's newest minute).
CREATE TABLE IF NOT EXISTS rollup_uptime_bounds (
    environment VARCHAR PRIMARY KEY,
    first_minute TIMESTAMPTZ NOT NULL,
    last_minute TIMESTAMPTZ NOT NULL
);

-- The midpoint of log bucket `bucket` of the latency histogram (bucket i covers
-- (gamma^(i-1), gamma^i] ms, -100000 holds durations <= 0); within 0.5% of every value in it.
CREATE OR REPLACE MACRO latency_bucket_ms(bucket, gamma) AS
    CASE WHEN bucket = -100000 THEN 0 ELSE 2 * pow(gamma, bucket) / (gamma + 1) END;

-- The minutes (as epoch minutes, both ends included) each environment's uptime rows are
-- recomputed over; filled and emptied within one refresh.
CREATE TABLE IF NOT EXISTS uptime_refresh_windows (
    environment VARCHAR PRIMARY KEY,
    lo_minute BIGINT NOT NULL,
    hi_minute BIGINT NOT NULL
);

-- The rollup_uptime_minutes rows of every window in uptime_refresh_windows: each minute
-- with requests, and each minute one to four weeks after one, up to the environment's
-- own last minute. A week is 10080 minutes counted in UTC epoch minutes, so a daylight
-- saving change never shifts "the same minute of the week".
CREATE OR REPLACE MACRO uptime_minute_rows() AS TABLE
WITH w AS (
    SELECT w.environment, w.lo_minute, w.hi_minute,
           epoch(b.first_minute)::BIGINT // 60 AS first_m,
           epoch(b.last_minute)::BIGINT // 60 AS last_m
    FROM uptime_refresh_windows w
    JOIN rollup_uptime_bounds b USING (environment)
),
data AS (
    SELECT r.environment, epoch(r.minute)::BIGINT // 60 AS m, r.requests, r.errors
    FROM rollup_minutes r
    JOIN w USING (environment)
    WHERE r.minute >= to_timestamp((w.lo_minute - 4 * 10080) * 60)
      AND r.minute <= to_timestamp(w.hi_minute * 60)
),
candidates AS (
    SELECT DISTINCT d.environment, d.m + 10080 * t.k AS m, w.first_m
    FROM data d
    JOIN w USING (environment)
    CROSS JOIN range(0, 5) t(k)
    WHERE d.m + 10080 * t.k BETWEEN w.lo_minute AND least(w.hi_minute, w.last_m)
),
lags AS (  -- the same minute 1..4 weeks before; NULL before the environment's first minute
    SELECT c.environment, c.m,
           CASE WHEN c.m - 10080 * t.k >= c.first_m THEN coalesce(d.requests, 0) END AS past
    FROM candidates c
    CROSS JOIN range(1, 5) t(k)
    LEFT JOIN data d ON d.environment = c.environment AND d.m = c.m - 10080 * t.k
),
history AS (
    SELECT environment, m, median(past) AS expected FROM lags GROUP BY ALL
)
SELECT h.environment, to_timestamp(h.m * 60) AS minute,
       coalesce(d.requests, 0) AS requests, coalesce(d.errors, 0) AS errors, h.expected
FROM history h
LEFT JOIN data d USING (environment, m);

-- Fill the new tables from the rollups an older warehouse already holds.
INSERT INTO rollup_uptime_bounds
SELECT environment, min(minute), max(minute) FROM rollup_minutes GROUP BY ALL;
INSERT INTO uptime_refresh_windows
SELECT environment, epoch(first_minute)::BIGINT // 60, epoch(last_minute)::BIGINT // 60
FROM rollup_uptime_bounds;
INSERT INTO rollup_uptime_minutes SELECT * FROM uptime_minute_rows();
DELETE FROM uptime_refresh_windows;
